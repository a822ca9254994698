version 1.1

# WDL 1.1: sep() as a function, min(), and the task's inputs/outputs as before.
workflow join_words {
  input {
    Array[String] words = ["alpha", "beta", "gamma"]
    Int width = 10
  }

  Int limit = min(width, 80)

  call join { input: words = words, limit = limit }

  output {
    String joined = join.joined
    File joined_file = join.joined_file
  }
}

task join {
  input {
    Array[String] words
    Int limit
  }
  command <<<
    echo '~{sep(",", words)}' | cut -c 1-~{limit} > joined.txt
    cat joined.txt
  >>>
  output {
    String joined = read_string(stdout())
    File joined_file = "joined.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
