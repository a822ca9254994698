version 1.0

# Squares 0..count-1 in parallel, then adds the squares up.
workflow scatter_squares {
  input {
    Int count = 3
  }

  scatter (n in range(count)) {
    call square { input: n = n }
  }

  call add_up { input: values = square.value }

  output {
    Array[Int] squares = square.value
    Array[File] notes = square.note
    Int total = add_up.total
  }
}

task square {
  input {
    Int n
  }
  command <<<
    echo $(( ~{n} * ~{n} ))
  >>>
  output {
    Int value = read_int(stdout())
    File note = stdout()
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}

task add_up {
  input {
    Array[Int] values
  }
  command <<<
    total=0
    for v in ~{sep=" " values}; do total=$((total + v)); done
    echo "$total"
  >>>
  output {
    Int total = read_int(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
