// Chaos: a test guest that misbehaves on command, to exercise the host's limits and sandbox.
// The commands and outputs are those of guests/python/chaos; the invoke payload is one of:
//
//	ok           return "ok"
//	loop         spin forever (fuel or the deadline stops it)
//	spin:N       burn CPU for N loop iterations, then return {"spun":N}
//	sleep:MS     sleep MS milliseconds of wall-clock time (the deadline stops it, not fuel)
//	alloc:MB     allocate and touch MB MiB (4 KiB blocks); over the memory cap the Go runtime aborts
//	recurse      unbounded recursion until the goroutine stack limit
//	stdout:N     write N bytes to stdout
//	trap         panic: the Go runtime reports it and exits with status 2
//	exit:N       exit with status N
//	raise        return an error: the function's failure (outcome GuestError)
//	env          the environment as JSON: only the manifest's [env]
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"fnhost"
)

var sink int

func recurse(n int) int {
	var frame [64]int
	frame[n%64] = n
	return recurse(n+1) + frame[0]
}

func init() {
	fnhost.HandleEvent(func(ctx *fnhost.Context, ev *fnhost.Event) (*fnhost.EventResult, error) {
		if ev.Kind != fnhost.EventInvoke {
			return fnhost.OutputJSON(map[string]string{"ignored": ev.Kind.String()}), nil
		}
		command, arg, _ := strings.Cut(strings.TrimSpace(string(ev.Payload)), ":")
		number := func() (int64, error) {
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a number", arg)
			}
			return n, nil
		}
		var out any // the answer, as encoding/json writes it
		switch command {
		case "ok":
			return fnhost.Output([]byte("ok")), nil
		case "loop":
			for i := 0; ; i++ {
				sink = i
			}
		case "spin":
			n, err := number()
			if err != nil {
				return nil, err
			}
			total := 0
			for i := 0; i < int(n); i++ {
				total += i
			}
			sink = total
			out = map[string]int64{"spun": n}
		case "sleep":
			ms, err := number()
			if err != nil {
				return nil, err
			}
			time.Sleep(time.Duration(ms) * time.Millisecond)
			out = map[string]int64{"slept_ms": ms}
		case "alloc":
			mb, err := number()
			if err != nil {
				return nil, err
			}
			// Page-sized blocks, as a growing workload would (and as the Rust chaos guest does).
			blocks := make([][]byte, 0, mb*256)
			for i := int64(0); i < mb*256; i++ {
				block := make([]byte, 4096)
				block[0] = 1 // touch the page
				blocks = append(blocks, block)
			}
			sink = len(blocks)
			out = map[string]int64{"allocated_mb": mb}
		case "recurse":
			out = map[string]int{"depth": recurse(0)}
		case "stdout":
			n, err := number()
			if err != nil {
				return nil, err
			}
			if _, err := os.Stdout.Write([]byte(strings.Repeat("x", int(n)))); err != nil {
				return nil, err
			}
			out = map[string]int64{"printed": n}
		case "trap":
			panic("chaos: trap on purpose")
		case "exit":
			code := int64(1)
			if arg != "" {
				n, err := number()
				if err != nil {
					return nil, err
				}
				code = n
			}
			os.Exit(int(code))
		case "raise":
			return nil, errors.New("chaos: raised on purpose")
		case "env":
			env := map[string]string{}
			for _, kv := range os.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			out = env
		default:
			return nil, fmt.Errorf("unknown chaos command %q (see guests/go/chaos/main.go)", command)
		}
		return fnhost.OutputJSON(out), nil
	})
}

func main() {}
