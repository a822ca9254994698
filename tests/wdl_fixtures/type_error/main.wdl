version 1.0

workflow type_error {
  input {
    Int count = true
    String label = undefined_name
  }

  call echo_count { input: n = count }

  output {
    Int doubled = echo_count.value * 1.5
  }
}

task echo_count {
  input {
    Int n
  }
  command <<<
    echo ~{n}
  >>>
  output {
    Int value = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
