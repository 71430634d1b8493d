# A Vagrant provider for tests only. Booting the Vagrantfile's VM cannot be
# done on the test machines (no VirtualBox; /dev/kvm is a PVM host on which
# stock kernels do not boot; no box can be downloaded), so this provider
# stands in for the VM with a lab/fleet.py host, an Ubuntu noble sshd on
# 127.0.0.1 (TRACEKIT_LAB_PORT, TRACEKIT_LAB_KEY, root). Everything after the
# boot is Vagrant's own: `vagrant provision` validates the Vagrantfile, fires
# its trigger and runs its Ansible provisioners against that host.
module TracekitLabProvider
  class Plugin < Vagrant.plugin("2")
    name "tracekit lab host"
    provider(:tracekit_lab, box_optional: true, parallel: false) { Provider }
  end

  class Provider < Vagrant.plugin("2", :provider)
    def initialize(machine)
      @machine = machine
    end

    def action(name)
      return nil unless name == :provision
      Vagrant::Action::Builder.new.tap do |b|
        b.use Vagrant::Action::Builtin::ConfigValidate
        b.use Created
        b.use Vagrant::Action::Builtin::Provision
      end
    end

    def ssh_info
      { host: "127.0.0.1", port: Integer(ENV.fetch("TRACEKIT_LAB_PORT")), username: "root",
        private_key_path: [ENV.fetch("TRACEKIT_LAB_KEY")] }
    end

    def state
      Vagrant::MachineState.new(:running, "running", "a lab/fleet.py host")
    end
  end

  # A machine with an id is one Vagrant lists as active, and the Ansible
  # provisioner puts only active machines in its generated inventory.
  class Created
    def initialize(app, env)
      @app = app
    end

    def call(env)
      env[:machine].id ||= "tracekit-lab-host"
      @app.call(env)
    end
  end
end
