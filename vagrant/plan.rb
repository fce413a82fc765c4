# The lab's address plan for the Vagrantfile, read from scripts/lab.d/plan.env: the same
# file the namespace lab sources, so one edit moves both labs.  Kept apart from the
# Vagrantfile so a test can check it with plain `ruby` (no Vagrant needed).
require "ipaddr"

module GwlabPlan
  DEFAULT = File.expand_path("../scripts/lab.d/plan.env", __dir__)

  # KEY=VALUE lines, comments and blank lines; anything else is an error, not a guess,
  # because a line that the shell reads differently would split the two labs apart.
  def self.load(path = ENV.fetch("LAB_PLAN", DEFAULT))
    plan = {}
    File.readlines(path, chomp: true).each_with_index do |line, i|
      next if line.strip.empty? || line.lstrip.start_with?("#")
      m = /\A([A-Z][A-Z0-9_]*)=([^\s"'$`\\]+)\z/.match(line)
      raise ArgumentError, "#{path}:#{i + 1}: not a plain KEY=VALUE line: #{line.inspect}" unless m
      plan[m[1]] = m[2]
    end
    plan
  end

  def self.netmask(plan)
    IPAddr.new("255.255.255.255").mask(Integer(plan.fetch("PREFIX4"))).to_s
  end

  # VM name => [[network name, IPv4 address], ...]; the IPv6 twins are added by vm-node.sh.
  def self.nodes(plan)
    {
      "gateway"    => [["gwlab-phone", plan.fetch("GW_PHONE_V4")],
                       ["gwlab-lan", plan.fetch("GW_LAN_V4")],
                       ["gwlab-srv", plan.fetch("GW_SRV_V4")]],
      "phone-sim"  => [["gwlab-phone", plan.fetch("PHONE_V4")]],
      "lan-client" => [["gwlab-lan", plan.fetch("LAN_V4")]],
      "servers"    => [["gwlab-srv", plan.fetch("SRV_V4")]],
    }
  end
end
