// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// Plan is a Forklift Plan read with the host's plan library (the same
// reader as `pallet migrate plan.yaml`): the Plan with its Providers,
// Secrets, NetworkMap and StorageMap, normalized.
type Plan struct {
	Name       string // metadata.name of the Plan
	SourceType string // spec.type of the source Provider: the provider to Load
	// JSON is the normalized plan, the input of Migrate.
	JSON json.RawMessage
	// SourceConfig is the source provider's open() config: the Provider,
	// its Secret's data and its settings. It holds secrets: never log it.
	SourceConfig []byte
}

// String names the plan without its secrets.
func (p *Plan) String() string { return fmt.Sprintf("plan %q (source type %q)", p.Name, p.SourceType) }

// LoadPlan reads Forklift resources from files (YAML or JSON, several
// documents each; "-" is standard input). name chooses the Plan
// ("name" or "namespace/name"); "" when the files hold exactly one.
// References must resolve within the files; a missing destination
// Provider, or one named "host", is the local cluster.
func LoadPlan(name string, files ...string) (*Plan, error) {
	if len(files) == 0 {
		return nil, &Error{Op: "plan", Status: StatusInvalid, Message: "no plan files given: pass the YAML files of the Plan and its Providers, Secrets and maps"}
	}
	paths := C.calloc(C.size_t(len(files)), C.size_t(unsafe.Sizeof((*C.char)(nil))))
	defer C.free(paths)
	pv := unsafe.Slice((**C.char)(paths), len(files))
	for i, f := range files {
		pv[i] = cstring(f)
		defer freeC(pv[i])
	}
	cn := cstringOrNil(name)
	defer freeC(cn)
	var plan, config, errmsg *C.char
	rc := C.palletgo_plan_load((**C.char)(paths), C.size_t(len(files)), cn, &plan, &config, &errmsg)
	if rc != 0 {
		msg := goStr(errmsg)
		C.free(unsafe.Pointer(errmsg))
		return nil, &Error{Op: "plan", Status: StatusInvalid, Message: msg}
	}
	p := &Plan{JSON: json.RawMessage(C.GoString(plan)), SourceConfig: []byte(C.GoString(config))}
	C.free(unsafe.Pointer(plan))
	C.palletgo_free_secret(config)
	var head struct {
		Name   string `json:"name"`
		Source struct {
			Type string `json:"type"`
		} `json:"source"`
	}
	if err := json.Unmarshal(p.JSON, &head); err != nil {
		return nil, &Error{Op: "plan", Status: StatusABI, Message: "the normalized plan is not JSON: " + err.Error()}
	}
	p.Name, p.SourceType = head.Name, head.Source.Type
	return p, nil
}
