// CoreDNS with only the plugins the one-node cluster of `make e2e` uses: cluster.local
// names from the API server (kubernetes), a cache, and the listener address (bind).
// Nothing is forwarded: the cluster is offline. Built by k8s/cluster/cluster.py.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// the order in which the plugins see a query (CoreDNS' plugin.cfg order)
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "log", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
