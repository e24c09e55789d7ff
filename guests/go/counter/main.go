// Counter: counts in the kv bucket `counters`, and shows what an ungranted bucket returns.
// It answers like guests/python/counter (the same JSON values; encoding/json writes them).
//
// HTTP:  POST /incr/<key> → {"key":k,"value":n}       GET /get/<key> → {"key":k,"value":n}
//
//	DELETE /del/<key> → {"key":k,"deleted":true}  GET /keys?prefix=p → {"keys":[...]}
//	GET /bucket/<bucket>/<key> reads any bucket: an ungranted one → 403 {"error":"denied",...}
//
// Event: {"op": "incr" | "get" | "delete" | "list", "key": k, "prefix": p, "bucket": b (default counters)}
//
//	{"op": "claim", "key": k} → {"key":k,"claimed":b} (compare-and-swap only if absent)
//	{"op": "lease", "key": k} → {"key":k,"leased":true} (set for 200 ms)
//	{"op": "pair", "key": k, "prefix": p} → {"values":["1","2",null]} (set-many k, p; get-many k, p, k-absent)
//
// A host error is answered as {"error": kind, "message": ...} (HTTP status by kind), not as a failure.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fnhost"
)

const bucket = "counters"

// leaseMs is how long `lease` keeps its key (the TTL tests wait past it).
const leaseMs = 200

var statusByKind = map[fnhost.ErrorKind]int{
	fnhost.KindDenied: 403, fnhost.KindNotFound: 404, fnhost.KindTooLarge: 413,
	fnhost.KindLimitExceeded: 429, fnhost.KindUnavailable: 503,
}

func current(bucket, key string) (int64, error) {
	raw, err := fnhost.KV.Get(bucket, key)
	if errors.Is(err, fnhost.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value of %q is not an integer", key)
	}
	return n, nil
}

// The answers, as encoding/json writes them.
type (
	value struct {
		Key   string `json:"key"`
		Value int64  `json:"value"`
	}
	deleted struct {
		Key     string `json:"key"`
		Deleted bool   `json:"deleted"`
	}
	keyList struct {
		Keys []string `json:"keys"`
	}
	failure struct {
		Error   fnhost.ErrorKind `json:"error"`
		Message string           `json:"message"`
	}
	claim struct {
		Key     string `json:"key"`
		Claimed bool   `json:"claimed"`
	}
	lease struct {
		Key    string `json:"key"`
		Leased bool   `json:"leased"`
	}
	pair struct {
		Values []*string `json:"values"`
	}
)

func run(op, bucket, key, prefix string) (any, error) {
	switch op {
	case "incr": // atomic: concurrent invocations never lose a count
		n, err := fnhost.KV.Increment(bucket, key, 1)
		if err != nil {
			return nil, err
		}
		return value{key, n}, nil
	case "get":
		n, err := current(bucket, key)
		if err != nil {
			return nil, err
		}
		return value{key, n}, nil
	case "delete":
		if err := fnhost.KV.Delete(bucket, key); err != nil {
			return nil, err
		}
		return deleted{key, true}, nil
	case "list":
		keys, err := fnhost.KV.ListKeys(bucket, prefix, 1000)
		if err != nil {
			return nil, err
		}
		return keyList{keys}, nil
	case "claim":
		claimed, err := fnhost.KV.CompareAndSwap(bucket, key, nil, []byte("claimed"))
		if err != nil {
			return nil, err
		}
		return claim{key, claimed}, nil
	case "lease":
		if err := fnhost.KV.SetWithTTL(bucket, key, []byte("leased"), leaseMs); err != nil {
			return nil, err
		}
		return lease{key, true}, nil
	case "pair":
		entries := []fnhost.KVEntry{{Key: key, Value: []byte("1")}, {Key: prefix, Value: []byte("2")}}
		if err := fnhost.KV.SetMany(bucket, entries); err != nil {
			return nil, err
		}
		values, err := fnhost.KV.GetMany(bucket, []string{key, prefix, key + "-absent"})
		if err != nil {
			return nil, err
		}
		out := make([]*string, len(values))
		for i, v := range values {
			if v != nil {
				text := string(v)
				out[i] = &text
			}
		}
		return pair{out}, nil
	case "blob-copy": // streams object key to prefix in 64 KiB reads, then deletes key
		return blobCopy(bucket, key, prefix)
	}
	return nil, fmt.Errorf("unknown op %q (incr, get, delete, list, claim, lease, pair)", op)
}

// hostError is the answer to a failed host call, or nil if err is not one (then it is a failure).
func hostError(err error) (*fnhost.Error, *failure) {
	var e *fnhost.Error
	if !errors.As(err, &e) {
		return nil, nil
	}
	return e, &failure{e.Kind, e.Text()}
}

func init() {
	fnhost.HandleHTTP(func(ctx *fnhost.Context, req *fnhost.Request) (*fnhost.Response, error) {
		parts := strings.Split(strings.Trim(req.Path, "/"), "/")
		route := req.Method + " " + parts[0]
		want := map[string]int{"POST incr": 2, "GET get": 2, "DELETE del": 2, "GET keys": 1, "GET bucket": 3}
		if n, ok := want[route]; !ok || len(parts) != n {
			return fnhost.JSON(failure{fnhost.KindNotFound, "no route " + req.Method + " " + req.Path}).WithStatus(404), nil
		}
		var out any
		var err error
		switch route {
		case "POST incr":
			out, err = run("incr", bucket, parts[1], "")
		case "GET get":
			out, err = run("get", bucket, parts[1], "")
		case "DELETE del":
			out, err = run("delete", bucket, parts[1], "")
		case "GET keys":
			prefix, _ := req.Query("prefix")
			out, err = run("list", bucket, "", prefix)
		case "GET bucket":
			out, err = run("get", parts[1], parts[2], "")
		}
		if err != nil {
			e, body := hostError(err)
			if e == nil {
				return nil, err
			}
			status, ok := statusByKind[e.Kind]
			if !ok {
				status = 400
			}
			return fnhost.JSON(body).WithStatus(status), nil
		}
		return fnhost.JSON(out), nil
	})

	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		if ev.Kind != fnhost.EventInvoke {
			return nil, fmt.Errorf("counter handles direct invokes only, not %s", ev.Kind)
		}
		args := map[string]any{}
		if err := ev.JSON(&args); err != nil {
			return nil, fmt.Errorf("payload is not a JSON object: %w", err)
		}
		field := func(name, fallback string) string {
			if s, ok := args[name].(string); ok {
				return s
			}
			return fallback
		}
		op, ok := args["op"].(string)
		if !ok {
			return nil, errors.New(`payload has no "op" string`)
		}
		out, err := run(op, field("bucket", bucket), field("key", ""), field("prefix", ""))
		if err != nil {
			if _, body := hostError(err); body != nil {
				return fnhost.OutputJSON(body), nil
			}
			return nil, err
		}
		return fnhost.OutputJSON(out), nil
	})
}

func main() {}

type blobCopied struct {
	Size        uint64   `json:"size"`
	SHA256      string   `json:"sha256"`
	ContentType string   `json:"content_type"`
	Keys        []string `json:"keys"`
	StatAgrees  bool     `json:"stat_agrees"`
}

func blobCopy(bucket, src, dst string) (any, error) {
	r, err := fnhost.Blobs.Open(bucket, src)
	if err != nil {
		return nil, err
	}
	w, err := fnhost.Blobs.Create(bucket, dst, "application/x-copy")
	if err != nil {
		return nil, err
	}
	for {
		chunk, err := r.Read(65536)
		if err != nil {
			return nil, err
		}
		if len(chunk) == 0 {
			break
		}
		if _, err := w.Write(chunk); err != nil {
			return nil, err
		}
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
	info, err := w.Finish()
	if err != nil {
		return nil, err
	}
	stat, err := fnhost.Blobs.Stat(bucket, dst)
	if err != nil {
		return nil, err
	}
	if err := fnhost.Blobs.Delete(bucket, src); err != nil {
		return nil, err
	}
	keys, err := fnhost.Blobs.List(bucket, "", "", 1000)
	if err != nil {
		return nil, err
	}
	data, err := fnhost.Blobs.Get(bucket, dst)
	if err != nil {
		return nil, err
	}
	return blobCopied{info.Size, info.SHA256, info.ContentType, keys, *stat == *info && uint64(len(data)) == info.Size}, nil
}
