// Package metrics exposes the bridge's Prometheus metrics on a registry of
// its own (no global state): requests, latency, provider calls, cache use,
// bytes moved and uploads in flight.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	providerCalls   *prometheus.CounterVec
	driverCalls     *prometheus.CounterVec
	cacheLookups    *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	uploadsInFlight prometheus.Gauge
	loginFailures   prometheus.Counter
}

// New registers every collector on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_requests_total", Help: "WebDAV requests by method and status.",
		}, []string{"method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bridge_request_duration_seconds", Help: "WebDAV request latency by method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method"}),
		providerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_provider_calls_total",
			Help: "HTTP requests to providers (every page, part and retry) by mount, driver operation and result.",
		}, []string{"mount", "op", "result"}),
		driverCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_driver_calls_total", Help: "Driver operations by mount, operation and result.",
		}, []string{"mount", "op", "result"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_listing_cache_lookups_total", Help: "Folder listing cache lookups by result (hit, miss).",
		}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_bytes_total", Help: "Request and response body bytes (direction in, out).",
		}, []string{"direction"}),
		uploadsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_uploads_in_flight", Help: "Uploads being sent to providers.",
		}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bridge_login_failures_total", Help: "Requests with wrong credentials.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.providerCalls, m.driverCalls, m.cacheLookups, m.bytes, m.uploadsInFlight, m.loginFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one finished request.
func (m *Metrics) ObserveRequest(method string, status int, d time.Duration, in, out int64) {
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
	m.bytes.WithLabelValues("in").Add(float64(in))
	m.bytes.WithLabelValues("out").Add(float64(out))
}

// ProviderCall records a driver operation (davfs.Metrics).
func (m *Metrics) ProviderCall(mount, op string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.driverCalls.WithLabelValues(mount, op, result).Inc()
}

// ProviderRequest records one HTTP request to a provider; status 0 means
// no answer came.
func (m *Metrics) ProviderRequest(mount, op string, status int) {
	result := "ok"
	if status == 0 || status >= 400 {
		result = "error"
	}
	if op == "" {
		op = "other"
	}
	m.providerCalls.WithLabelValues(mount, op, result).Inc()
}

// CacheLookup records a listing cache lookup (davfs.Metrics).
func (m *Metrics) CacheLookup(hit bool) {
	if hit {
		m.cacheLookups.WithLabelValues("hit").Inc()
	} else {
		m.cacheLookups.WithLabelValues("miss").Inc()
	}
}

// UploadInFlight moves the uploads gauge (davfs.Metrics).
func (m *Metrics) UploadInFlight(delta int) { m.uploadsInFlight.Add(float64(delta)) }

// LoginFailed counts a request with wrong credentials.
func (m *Metrics) LoginFailed() { m.loginFailures.Inc() }
