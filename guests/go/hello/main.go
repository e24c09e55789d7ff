// Hello: echoes HTTP requests, greets by name, and echoes non-JSON event payloads verbatim.
// It answers like guests/python/hello (the same JSON values; encoding/json writes them).
package main

import "fnhost"

type greeting struct {
	Message string `json:"message"`
}

func greet(name string) greeting { return greeting{Message: "Hello, " + name + "!"} }

// echo is what any other path answers: the request as the function saw it.
type echo struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      map[string]string `json:"query"`      // the first value of each parameter
	UserAgent  *string           `json:"user_agent"` // null when the header is absent
	BodyLength int               `json:"body_length"`
	Function   string            `json:"function"`
	Version    string            `json:"version"`
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
			return fnhost.JSON(greet(name)), nil
		}
		out := echo{Method: req.Method, Path: req.Path, Query: map[string]string{}, BodyLength: len(req.Body),
			Function: ctx.FunctionName, Version: ctx.Version}
		for _, p := range req.QueryParams() {
			out.Query[p.Name] = p.Value
		}
		if ua, ok := req.Headers.Lookup("user-agent"); ok {
			out.UserAgent = &ua
		}
		return fnhost.JSON(out), nil
	})

	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		if ev.Kind != fnhost.EventInvoke {
			return fnhost.OutputJSON(greet(ev.Kind.String())), nil
		}
		var data map[string]any
		if ev.JSON(&data) == nil {
			if name, ok := data["name"].(string); ok {
				return fnhost.OutputJSON(greet(name)), nil
			}
		}
		return fnhost.Output(ev.Payload), nil
	})
}

func main() {}
