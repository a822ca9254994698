version 1.0

workflow wf {
  call nap
  output {
    Int done = nap.done
  }
}

task nap {
  command <<<
    echo "going to sleep" >&2
    sleep 60
  >>>
  output {
    Int done = 1
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
