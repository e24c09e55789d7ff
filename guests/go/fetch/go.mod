module fetch

go 1.24

require fnhost v0.0.0

replace fnhost => ../../../sdk/go
