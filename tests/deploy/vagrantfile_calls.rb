# Prints, as JSON, every setting a Vagrantfile makes (tests/deploy/test_vagrant.py): a recorder
# stands in for Vagrant's config object, so the file's Ruby runs as written (ENV, constants...).
require "json"

class SettingsRecorder
  def initialize(path, calls)
    @path = path
    @calls = calls
  end

  def method_missing(name, *args, **options, &block)
    key = name.to_s
    if key.end_with?("=")
      @calls << { "path" => @path + [key.chomp("=")], "args" => args, "options" => {} }
      return args.first
    end
    @calls << { "path" => @path + [key], "args" => args, "options" => options }
    child = SettingsRecorder.new(@path + [key], @calls)
    block&.call(child)
    child
  end

  def respond_to_missing?(*)
    true
  end
end

module Vagrant
  def self.configure(_version)
    calls = []
    yield SettingsRecorder.new([], calls)
    puts JSON.generate(calls)
  end
end

load ARGV.fetch(0)
