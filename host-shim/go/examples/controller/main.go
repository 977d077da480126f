// SPDX-License-Identifier: Apache-2.0
// Command pallet-go-controller is a Forklift-style controller in Go over
// the Pallet binding: the Go twin of `pallet migrate`.
//
//	pallet-go-controller [flags] PLAN [PLAN...]
//
// Each PLAN is a Forklift Plan with its Providers, Secrets, NetworkMap and
// StorageMap: one YAML file, or several joined with commas. For each plan
// the controller loads the provider named by the source Provider's type
// (keeping one loaded module per type, shared by the plans that need it,
// unloaded when the last of them is done), validates the plan, then
// migrates it through the host's driver with at most -max-in-flight VMs
// at once; -plans plans are reconciled at once, so a second provider is
// loaded while the first one is. SIGINT or SIGTERM cancels: the VMs in
// flight are rolled back.
//
// It prints one JSON object per line: the host's events (as `pallet
// migrate -o json` prints them) with a "plan" member, and its own
// "provider" (loaded, unloaded) and "reconciled" events. The exit code is
// the worst plan's (0 ok, 1 a VM failed, 3 provider not loadable, 4
// cancelled, 5 bad plan).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
