version 1.0

import "https://example.org/wdl/lib.wdl" as remote

workflow import_url {
  call remote.hello

  output {
    String greeting = hello.greeting
  }
}
