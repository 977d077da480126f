// SPDX-License-Identifier: Apache-2.0
// Package host drives Pallet migration providers from Go: it is a cgo
// binding over libpallet-host (<pallet/host.h>).
//
// A provider is a dlopen-able C module; Load finds and loads one by name
// ("ec2", searched on $PALLET_PROVIDER_PATH then the install dir) or by
// path. Open calls its open() with a config and gives a Session, on which
// the seven ops run (Validate, Inventory, PrepareSource, Transfer, Convert,
// BuildVM, Cleanup) and Session.Inventory lists source objects through the
// host's query language. Migrate, CleanupPlan and ValidatePlan run a whole
// normalized plan through the host's driver (state dir, retries, rollback),
// reporting Events to a callback. LoadPlan reads Forklift YAML with the
// host's plan library.
//
// Cancelling a context maps to the host's cancel: each op or run has its
// own cancel token (pallet_cancel_new), which the context triggers, so the
// op's host->cancelled() turns true, the provider stops within its cancel
// bound, and a plan run rolls its in-flight VMs back -- that op or run
// only: the others in flight go on.
//
// No C pointer reaches a caller: events, results and errors are copied into
// Go values before the call returns. Errors are *Error values carrying the
// pallet_status and the host's message, or *ExitError for plan runs.
package host
