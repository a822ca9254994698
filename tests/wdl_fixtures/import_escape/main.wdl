version 1.0

import "../scatter/main.wdl" as outside

workflow import_escape {
  call outside.square { input: n = 2 }

  output {
    Int value = square.value
  }
}
