# Installed by tracekit (ddebs role): DEBUGINFOD_URLS for login shells, from
# the *.urls files in /etc/debuginfod (the distribution's servers, once its
# libdebuginfod-common is installed, and tracekit's own), unless already set.
# The same as libdebuginfod-common's profile script, under tracekit's name.

if [ -z "$DEBUGINFOD_URLS" ]; then
    DEBUGINFOD_URLS=$(cat /dev/null /etc/debuginfod/*.urls 2>/dev/null | tr '\n' ' ')
    [ -n "$DEBUGINFOD_URLS" ] && export DEBUGINFOD_URLS || unset DEBUGINFOD_URLS
fi
