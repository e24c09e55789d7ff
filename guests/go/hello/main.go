// Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.
// It answers byte for byte like guests/python/hello.
package main

import "fnhost"

func greeting(name string) []byte {
	return fnhost.NewObject().Str("message", "Hello, "+name+"!").Bytes()
}

func init() {
	fnhost.HandleHTTP(func(ctx *fnhost.Context, req *fnhost.Request) (*fnhost.Response, error) {
		switch req.Path {
		case "/echo":
			contentType := req.Headers.Get("content-type")
			if contentType == "" {
				contentType = "application/octet-stream"
			}
			return fnhost.Bytes(req.Body, contentType), nil
		case "/hello":
			name, ok := req.Query("name")
			if !ok {
				name = "world"
			}
			return fnhost.JSON(greeting(name)), nil
		}
		query := fnhost.NewObject()
		for _, p := range req.QueryParams() {
			query.Str(p.Name, p.Value)
		}
		echo := fnhost.NewObject().Str("method", req.Method).Str("path", req.Path).Raw("query", query.Bytes())
		if ua, ok := req.Headers.Lookup("user-agent"); ok {
			echo.Str("user_agent", ua)
		} else {
			echo.Null("user_agent")
		}
		echo.Int("body_length", int64(len(req.Body))).Str("function", ctx.FunctionName).Str("version", ctx.Version)
		return fnhost.JSON(echo.Bytes()), nil
	})

	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		if ev.Kind != fnhost.EventInvoke {
			return fnhost.Output(greeting(ev.Kind.String())), nil
		}
		var data map[string]any
		if ev.JSON(&data) == nil {
			if name, ok := data["name"].(string); ok {
				return fnhost.Output(greeting(name)), nil
			}
		}
		return fnhost.Output(ev.Payload), nil
	})
}

func main() {}
