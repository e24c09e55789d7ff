// {{name}}: GET /hello?name=... greets and counts visits in the kv bucket `visits`; any event
// returns the count. Build with `fnhost build .`, test with `python -m pytest test_function.py`.
package main

import (
	"errors"
	"fmt"
	"strconv"

	"fnhost"
)

const bucket = "visits"

func visits() (int64, error) {
	raw, err := fnhost.KV.Get(bucket, "hello")
	if errors.Is(err, fnhost.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(string(raw), 10, 64)
	return n, nil
}

func init() {
	fnhost.HandleHTTP(func(ctx *fnhost.Context, req *fnhost.Request) (*fnhost.Response, error) {
		if req.Path != "/hello" {
			body := fnhost.NewObject().Str("error", "not-found").Str("message", "no route "+req.Path)
			return fnhost.JSON(body.Bytes()).WithStatus(404), nil
		}
		count, err := visits()
		if err != nil {
			return nil, err
		}
		count++
		if err := fnhost.KV.Set(bucket, "hello", []byte(strconv.FormatInt(count, 10))); err != nil {
			return nil, err
		}
		fnhost.Log.Info(fmt.Sprintf("visit %d", count))
		name, ok := req.Query("name")
		if !ok {
			name = "world"
		}
		body := fnhost.NewObject().Str("message", "Hello, "+name+"!").Int("visits", count)
		return fnhost.JSON(body.Bytes()), nil
	})

	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		count, err := visits()
		if err != nil {
			return nil, err
		}
		return fnhost.Output(fnhost.NewObject().Int("visits", count).Bytes()), nil
	})
}

func main() {}
