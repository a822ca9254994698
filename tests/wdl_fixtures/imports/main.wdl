version 1.0

import "tasks/lib.wdl" as lib

workflow imports {
  input {
    File table
    Int keep = 2
  }

  call lib.head_lines { input: table = table, keep = keep }
  call lib.shout { input: text = head_lines.first }

  output {
    File head = head_lines.head
    String loud = shout.loud
  }
}
