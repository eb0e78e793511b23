//go:build tools

// Package tools pins the dependencies of the two commands build.py compiles
// (k8s.io/kubernetes/cmd/kube-apiserver and go.etcd.io/etcd/server/v3) in go.mod/go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
