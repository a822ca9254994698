version 1.0

workflow wf {
  output {
    Int x = 
  }
}
