version 1.0

workflow broken {
  input {
    Int x =
  }
}
