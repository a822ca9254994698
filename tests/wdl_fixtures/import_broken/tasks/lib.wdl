version 1.0

task twice {
  input {
    Int n
  }
  Int doubled = n * 2.5
  command <<<
    echo ~{doubled}
  >>>
  output {
    Int value = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
