package hosting

import (
	"context"
	"net/http"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/invoke"
)

var pingClient = &http.Client{
	Timeout: pingTimeout,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	},
}

// ping reports whether every container of an instance answers GET /ping
// with 200.
func ping(ctx context.Context, addrs []string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/ping", nil)
		if err != nil {
			return false
		}
		req.Header["User-Agent"] = nil
		resp, err := pingClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// monitor watches one instance until ctx ends: it reports the instance's
// exit, and its health from /ping: polled quickly until it first passes,
// then every HealthInterval. It flips the routing flag itself, so that
// routing reacts at once, and tells the controller about changes.
func (c *controller) monitor(ctx context.Context, b sagehost.Backend, id string, addrs []string, route *invoke.Instance) {
	exit := make(chan sagehost.ExitStatus, 1)
	go func() {
		st, err := b.Wait(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			st.Err = err
		}
		exit <- st
	}()
	interval := 200 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	healthy, fails := false, 0
	report := func(ok bool) {
		c.post(ctx, func() {
			if inst := c.instances[id]; inst != nil && inst.route == route {
				c.healthChanged(inst, ok)
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-exit:
			route.SetHealthy(false)
			c.post(ctx, func() {
				if inst := c.instances[id]; inst != nil && inst.route == route {
					c.exited(inst, st)
				}
			})
			return
		case <-timer.C:
		}
		if ping(ctx, addrs) {
			fails = 0
			if !route.Healthy() {
				route.SetHealthy(true)
			}
			if !healthy {
				healthy = true
				interval = c.m.cfg.HealthInterval
				report(true)
			}
		} else if healthy {
			fails++
			if fails >= unhealthyAfter {
				healthy = false
				route.SetHealthy(false)
				interval = 200 * time.Millisecond
				report(false)
			}
		}
		timer.Reset(interval)
	}
}
