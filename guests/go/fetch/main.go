// Fetch: makes the outbound HTTP request its event asks for (fnhost.HTTP); it answers like
// guests/python/fetch.
//
// Event: {"url": u, "method": "GET", "headers": {name: value}, "body": text, "timeout_ms": n}
//
//	→ {"status": s, "headers": [[name, value]...], "body": text}
//
// A host error is answered as {"error": kind, "message": ...}, not as a failure.
package main

import (
	"errors"
	"fmt"

	"fnhost"
)

type request struct {
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	TimeoutMs uint32            `json:"timeout_ms"`
}

type answer struct {
	Status  int         `json:"status"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

type failure struct {
	Error   fnhost.ErrorKind `json:"error"`
	Message string           `json:"message"`
}

func init() {
	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		if ev.Kind != fnhost.EventInvoke {
			return nil, fmt.Errorf("fetch handles direct invokes only, not %s", ev.Kind)
		}
		req := request{Method: "GET"}
		if err := ev.JSON(&req); err != nil {
			return nil, fmt.Errorf("payload is not a JSON object: %w", err)
		}
		var headers fnhost.Headers
		for name, value := range req.Headers {
			headers = append(headers, fnhost.Header{Name: name, Value: value})
		}
		resp, err := fnhost.HTTP.Do(req.Method, req.URL, headers, []byte(req.Body), req.TimeoutMs)
		var hostErr *fnhost.Error
		if errors.As(err, &hostErr) {
			return fnhost.OutputJSON(failure{hostErr.Kind, hostErr.Text()}), nil
		}
		if err != nil {
			return nil, err
		}
		out := answer{Status: resp.Status, Headers: [][2]string{}, Body: string(resp.Body)}
		for _, h := range resp.Headers {
			out.Headers = append(out.Headers, [2]string{h.Name, h.Value})
		}
		return fnhost.OutputJSON(out), nil
	})
}

func main() {}
