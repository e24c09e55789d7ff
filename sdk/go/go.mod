module fnhost

go 1.24
