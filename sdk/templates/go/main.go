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

// greeting is the HTTP answer; encoding/json writes it ({"message":"Hello, you!","visits":1}).
type greeting struct {
	Message string `json:"message"`
	Visits  int64  `json:"visits"`
}

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
			body := map[string]string{"error": "not-found", "message": "no route " + req.Path}
			return fnhost.JSON(body).WithStatus(404), nil
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
		return fnhost.JSON(greeting{Message: "Hello, " + name + "!", Visits: count}), nil
	})

	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		count, err := visits()
		if err != nil {
			return nil, err
		}
		return fnhost.OutputJSON(map[string]int64{"visits": count}), nil
	})
}

func main() {}
