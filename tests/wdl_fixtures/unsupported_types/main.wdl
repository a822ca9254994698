version 1.0

struct Sample {
  String name
  File reads
}

workflow unsupported_types {
  input {
    Map[String, Int] sizes
    Pair[Int, String] pair
    Array[Array[File]] batches
    Sample sample
    Int fine = 1
  }

  call list_batches { input: batches = batches }

  output {
    Map[String, Int] sizes_out = sizes
    Array[Array[File]] all_batches = batches
    Array[Array[Int]] grid = [[1, 2], [3]]
    Array[String] listing = list_batches.names
  }
}

task list_batches {
  input {
    Array[Array[File]] batches
  }
  command <<<
    echo batch
  >>>
  output {
    Array[String] names = read_lines(stdout())
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
