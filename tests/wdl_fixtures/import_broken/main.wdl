version 1.0

import "tasks/lib.wdl" as lib

workflow import_broken {
  call lib.twice { input: n = 2 }

  output {
    Int value = twice.value
  }
}
