package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// latencyProxy forwards every request to a registry after a fixed delay,
// as a distant registry answers: each manifest, blob and token request
// pays it once.
type latencyProxy struct {
	Host     string // 127.0.0.1:<port> it listens on
	delay    time.Duration
	requests atomic.Int64
	srv      *http.Server
	ln       net.Listener
}

// startProxy listens on a free port of 127.0.0.1 and forwards to target
// (http://host:port) after delay.
func startProxy(target string, delay time.Duration) (*latencyProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &latencyProxy{Host: ln.Addr().String(), delay: delay, ln: ln}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Requests returns how many requests the proxy has received.
func (p *latencyProxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy.
func (p *latencyProxy) Close() error { return p.srv.Close() }
