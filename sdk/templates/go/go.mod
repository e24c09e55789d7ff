module {{crate}}

go 1.24

require fnhost v0.0.0

// `fnhost build .` points fnhost at its own SDK; this line is for editors and `go vet`.
replace fnhost => {{sdk}}/go
