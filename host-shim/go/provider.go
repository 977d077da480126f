// SPDX-License-Identifier: Apache-2.0
package host

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// ThreadModel is how much concurrency a provider tolerates.
type ThreadModel int

// The thread models of the provider ABI.
const (
	SerializeAll       ThreadModel = C.PALLET_THREAD_MODEL_SERIALIZE_ALL
	SerializePerHandle ThreadModel = C.PALLET_THREAD_MODEL_SERIALIZE_PER_HANDLE
	Parallel           ThreadModel = C.PALLET_THREAD_MODEL_PARALLEL
)

func (t ThreadModel) String() string {
	switch t {
	case SerializeAll:
		return "serialize_all"
	case SerializePerHandle:
		return "serialize_per_handle"
	case Parallel:
		return "parallel"
	}
	return fmt.Sprintf("thread_model(%d)", int(t))
}

// Capability bits (PALLET_CAP_*).
const (
	CapColdMigration   uint64 = 1 << 0
	CapWarmMigration   uint64 = 1 << 1
	CapZeroCopy        uint64 = 1 << 2
	CapCopy            uint64 = 1 << 3
	CapCrossAccount    uint64 = 1 << 4
	CapCrossRegion     uint64 = 1 << 5
	CapGuestConversion uint64 = 1 << 6
	CapInventoryQuery  uint64 = 1 << 7
)

// Info describes a loaded provider, from the host's copy of its vtable.
type Info struct {
	Path          string
	Name          string
	Version       string
	Description   string
	ABIMajor      uint32
	ABIMinor      uint32
	StructSize    uint64 // what the provider declared
	ThreadModel   ThreadModel
	CancelBoundMs uint32
	Capabilities  uint64
	Ops           map[Op]bool // which of the seven ops it implements
}

// Provider is a loaded provider module. It is safe for concurrent use.
type Provider struct {
	mu       sync.Mutex
	m        *C.struct_pallet_module // nil once unloaded
	sessions int                     // open sessions
	runs     int                     // plan runs in progress
	info     Info
}

// LoadFlags change how Load checks a provider.
type LoadFlags uint

// Lenient skips the required-op check (to Dump a broken provider).
const Lenient LoadFlags = C.PALLET_LOAD_LENIENT

// Load loads a provider by name ("ec2": pallet-provider-ec2.so on
// $PALLET_PROVIDER_PATH, then the install dir) or by path (anything with
// a '/'). Several providers may be loaded at once; each Load of the same
// file gives its own Provider.
func Load(nameOrPath string) (*Provider, error) { return LoadWith(nameOrPath, 0) }

// LoadWith is Load with flags.
func LoadWith(nameOrPath string, flags LoadFlags) (*Provider, error) {
	cs := cstring(nameOrPath)
	defer freeC(cs)
	var m *C.struct_pallet_module
	var e C.struct_palletgo_err
	rc := C.palletgo_load(cs, C.uint(flags), &m, &e)
	msg := takeErr(&e)
	if rc != C.PALLET_OK {
		return nil, &Error{Op: "load", Status: Status(rc), Message: msg}
	}
	p := &Provider{m: m}
	p.info = readInfo(m)
	return p, nil
}

func readInfo(m *C.struct_pallet_module) Info {
	v := C.pallet_module_vtable(m)
	return Info{
		Path:          C.GoString(C.pallet_module_path(m)),
		Name:          goStr(v.name),
		Version:       goStr(v.version),
		Description:   goStr(v.description),
		ABIMajor:      uint32(v.abi_major),
		ABIMinor:      uint32(v.abi_minor),
		StructSize:    uint64(C.pallet_module_struct_size(m)),
		ThreadModel:   ThreadModel(v.thread_model),
		CancelBoundMs: uint32(v.cancel_bound_ms),
		Capabilities:  uint64(v.capabilities),
		Ops: map[Op]bool{
			OpValidate: v.validate != nil, OpInventory: v.inventory != nil,
			OpPrepareSource: v.prepare_source != nil, OpTransfer: v.transfer != nil,
			OpConvert: v.convert != nil, OpBuildVM: v.build_vm != nil,
			OpCleanup: v.cleanup != nil,
		},
	}
}

func goStr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// Info describes the provider (still valid after Unload).
func (p *Provider) Info() Info {
	i := p.info
	i.Ops = make(map[Op]bool, len(p.info.Ops))
	for k, v := range p.info.Ops {
		i.Ops[k] = v
	}
	return i
}

// Name is the provider's name ("ec2").
func (p *Provider) Name() string { return p.info.Name }

// Dump is the provider's key=value description (pallet providers --dump):
// path, ABI, name, version, thread model, capabilities, the ops it has.
func (p *Provider) Dump() (map[string]string, error) {
	var text string
	if err := p.use(func(m *C.struct_pallet_module) error {
		c := C.palletgo_dump(m)
		if c == nil {
			return &Error{Op: "dump", Status: StatusNoMem, Message: "cannot buffer the dump"}
		}
		text = C.GoString(c)
		C.free(unsafe.Pointer(c))
		return nil
	}); err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv, nil
}

// use runs fn with the module while it is loaded.
func (p *Provider) use(fn func(*C.struct_pallet_module) error) error {
	p.mu.Lock()
	m := p.m
	p.mu.Unlock()
	if m == nil {
		return p.unloaded()
	}
	return fn(m)
}

func (p *Provider) unloaded() error {
	return &Error{Op: "provider", Status: StatusInvalid,
		Message: fmt.Sprintf("provider %q (%s) was unloaded: Load it again", p.info.Name, p.info.Path)}
}

// acquire pins the module for a session or a run; release unpins it.
func (p *Provider) acquire(run bool) (*C.struct_pallet_module, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		return nil, p.unloaded()
	}
	if run {
		p.runs++
	} else {
		p.sessions++
	}
	return p.m, nil
}

func (p *Provider) release(run bool) {
	p.mu.Lock()
	if run {
		p.runs--
	} else {
		p.sessions--
	}
	p.mu.Unlock()
}

// Unload unloads the provider (dlclose). It refuses while a session is
// open or a plan run is in progress: the module's code would vanish under
// them. Unloading twice is an error.
func (p *Provider) Unload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		return p.unloaded()
	}
	if p.sessions > 0 || p.runs > 0 {
		return &Error{Op: "unload", Status: StatusConflict,
			Message: fmt.Sprintf("provider %q: %d session(s) open and %d run(s) in progress: Close them (or wait for the runs) before Unload",
				p.info.Name, p.sessions, p.runs)}
	}
	C.pallet_module_free(p.m)
	p.m = nil
	return nil
}

// Find resolves a provider name or path to its file, as Load would.
func Find(nameOrPath string) (string, error) {
	defer lockThread()()
	cs := cstring(nameOrPath)
	defer freeC(cs)
	c := C.pallet_provider_find(cs)
	if c == nil {
		return "", &Error{Op: "find", Status: StatusNotFound, Message: lastError()}
	}
	defer C.free(unsafe.Pointer(c))
	return C.GoString(c), nil
}
