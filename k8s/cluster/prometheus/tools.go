//go:build tools

// Package tools pins Prometheus (github.com/prometheus/prometheus/cmd/prometheus, v3) for
// the end-to-end tests: Debian's package is built without kubernetes_sd_configs, so
// k8s/cluster/cluster.py builds this one with only the Kubernetes service discovery
// (build tags remove_all_sd, enable_kubernetes_sd).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
