// Package fnhost writes fnhost functions in Go (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared).
//
// It implements the fnhost core-module ABI (docs/abi.md): a function registers its handlers from
// init() and never touches a pointer.
//
//	package main
//
//	import "fnhost"
//
//	func init() {
//		fnhost.HandleHTTP(func(ctx *fnhost.Context, req *fnhost.Request) (*fnhost.Response, error) {
//			return fnhost.Text("hello from " + ctx.FunctionName), nil
//		})
//	}
//
//	func main() {}
//
// Host capabilities are fnhost.KV, fnhost.Queue, fnhost.Secrets and fnhost.Log. JSON goes through
// the standard encoding/json both ways: Request.JSON and Event.JSON decode, JSON and OutputJSON
// encode any value (a struct with json tags, a map...), Object builds an object in key order. The
// package has no dependencies outside the standard library, so guests build offline.
package fnhost
