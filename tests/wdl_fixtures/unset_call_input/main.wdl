version 1.0

workflow unset_call_input {
  input {
    Int count = 1
  }

  call needs_two { input: first = count }

  output {
    Int total = needs_two.total
  }
}

task needs_two {
  input {
    Int first
    Int second
  }
  command <<<
    echo $(( ~{first} + ~{second} ))
  >>>
  output {
    Int total = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
