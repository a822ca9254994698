version 1.0

# Valid WDL whose only task exits 1 after writing to stdout and stderr.
workflow failing_task {
  input {
    String message = "about to fail"
  }

  call fail { input: message = message }

  output {
    File log = fail.log
  }
}

task fail {
  input {
    String message
  }
  command <<<
    echo '~{message}' > log.txt
    echo 'failing on purpose' >&2
    exit 1
  >>>
  output {
    File log = "log.txt"
  }
  runtime {
    docker: "ferry/busybox:latest"
  }
}
