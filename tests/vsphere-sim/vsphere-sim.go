// SPDX-License-Identifier: Apache-2.0
// vsphere-sim: govmomi's vCenter (VPX) or ESXi simulator on 127.0.0.1 over
// TLS, with a real guest disk staged into one VM's datastore directory, so
// real VMware clients (libvirt's ESX driver, virt-v2v through nbdkit-curl)
// can read it.
//
//	vsphere-sim [-model vpx|esx] [-user U -password P] [-guest-disk RAW]
//	            [-vm NAME] [-uuid UUID] [-mac MAC] [-memsize MIB] [-cpus N]
//	            [-firmware bios|efi] [-power on|off] [-lifetime SECS]
//
// It prints one JSON line on stdout (the port, the thumbprint, the staged
// VM's name, directory and inventory path) once it serves, and runs until
// stdin is closed, SIGTERM/SIGINT, or -lifetime seconds have passed.
package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type info struct {
	Model      string `json:"model"`
	Port       int    `json:"port"`
	SimPort    int    `json:"simPort"`
	URL        string `json:"url"`
	Thumbprint string `json:"thumbprint"`
	User       string `json:"user"`
	VM         string `json:"vm"`
	VMUUID     string `json:"vmUUID"`
	VMMoref    string `json:"vmMoref"`
	VMDir      string `json:"vmDir"`
	Datastore  string `json:"datastore"`
	Datacenter string `json:"datacenter"`
	Host       string `json:"host"`
	HostPath   string `json:"hostPath"`
	Staged     bool   `json:"staged"`
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "vsphere-sim: error: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	model := flag.String("model", "vpx", "vpx (vCenter) or esx (ESXi)")
	user := flag.String("user", "root", "user name the simulator accepts")
	password := flag.String("password", "pallet-sim-pw", "password the simulator accepts")
	guest := flag.String("guest-disk", "", "raw guest image to stage (linked, never written)")
	vmName := flag.String("vm", "", "VM to stage the guest into (default DC0_H0_VM0 or ha-host_VM0)")
	uuid := flag.String("uuid", "", "uuid.bios of the staged VM")
	mac := flag.String("mac", "00:50:56:aa:bb:01", "MAC of the staged VM's NIC")
	memsize := flag.Int("memsize", 1024, "memory of the staged VM in MiB")
	cpus := flag.Int("cpus", 1, "vCPUs of the staged VM")
	firmware := flag.String("firmware", "bios", "bios or efi")
	power := flag.String("power", "off", "power state of every VM: on or off")
	lifetime := flag.Int("lifetime", 3600, "exit after this many seconds")
	vms := flag.Int("vms", 1, "VMs per host and per cluster (benchmarks: 1000)")
	flag.Parse()
	if flag.NArg() > 0 {
		die("unexpected argument %q; see -help", flag.Arg(0))
	}

	var m *simulator.Model
	switch *model {
	case "vpx":
		m = simulator.VPX()
	case "esx":
		m = simulator.ESX()
	default:
		die("-model %q: use vpx or esx", *model)
	}
	if *power != "on" && *power != "off" {
		die("-power %q: use on or off", *power)
	}
	if *firmware != "bios" && *firmware != "efi" {
		die("-firmware %q: use bios or efi", *firmware)
	}
	// virt-v2v refuses a running guest: VMs start powered off unless asked.
	m.Autostart = *power == "on"
	if *vms < 1 || *vms > 20000 {
		die("-vms %d: use 1 to 20000", *vms)
	}
	m.Machine = *vms
	if err := m.Create(); err != nil {
		die("creating the %s model: %v", *model, err)
	}
	defer m.Remove()

	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*user, *password)}
	m.Service.TLS = new(tls.Config)
	srv := m.Service.NewServer()
	defer srv.Close()

	out := info{Model: *model, User: *user}
	if *vmName == "" {
		// The standalone host's VM: its vpx:// path is /DC0/DC0_H0.
		*vmName = map[string]string{"vpx": "DC0_H0_VM0", "esx": "ha-host_VM0"}[*model]
	}
	vm := pickVM(*vmName)
	if vm == nil {
		die("no VM named %q in the %s model", *vmName, *model)
	}
	out.VM = vm.Name
	out.VMMoref = vm.Self.Value
	out.VMUUID = vm.Config.Uuid
	if err := locate(vm, &out); err != nil {
		die("%v", err)
	}
	if *guest != "" {
		if *uuid != "" {
			out.VMUUID = *uuid
		}
		if err := stage(vm, &out, *guest, *mac, *memsize, *cpus, *firmware); err != nil {
			die("staging %s: %v", *guest, err)
		}
		out.Staged = true
		if *vms > 1 {
			if err := stageAll(vm, &out, *guest, *memsize, *cpus, *firmware); err != nil {
				die("staging the other VMs: %v", err)
			}
		}
	}

	cert := srv.Certificate()
	sum := sha1.Sum(cert.Raw)
	var tp []string
	for _, b := range sum {
		tp = append(tp, fmt.Sprintf("%02X", b))
	}
	out.Thumbprint = strings.Join(tp, ":")
	backend, _ := url.Parse(srv.URL.String())
	backend.Path = ""
	backend.User = nil
	out.SimPort, _ = strconv.Atoi(backend.Port())

	front, port := serveProxy(backend, srv.TLS.Certificates)
	defer front.Close()
	out.Port = port
	out.URL = fmt.Sprintf("https://127.0.0.1:%d/sdk", port)

	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	os.Stdout.Sync()
	wait(time.Duration(*lifetime) * time.Second)
}

// wait returns on stdin EOF, a signal, or the lifetime's end: the program
// never outlives the test that started it.
func wait(lifetime time.Duration) {
	done := make(chan struct{}, 3)
	go func() {
		_, _ = io.Copy(ioutil.Discard, os.Stdin)
		done <- struct{}{}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	case <-time.After(lifetime):
		fmt.Fprintln(os.Stderr, "vsphere-sim: lifetime over, exiting")
	}
}

func pickVM(name string) *simulator.VirtualMachine {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Name == name {
			return vm
		}
	}
	return nil
}

// locate fills in the VM's datastore directory and its host's inventory
// path (what a vpx:// URI names).
func locate(vm *simulator.VirtualMachine, out *info) error {
	vmx := vm.Config.Files.VmPathName // "[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmx"
	i := strings.Index(vmx, "] ")
	if !strings.HasPrefix(vmx, "[") || i < 0 {
		return fmt.Errorf("VM %s: unexpected vmPathName %q", vm.Name, vmx)
	}
	out.Datastore = vmx[1:i]
	var dsDir string
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		if ds.Name == out.Datastore {
			dsDir = ds.Info.GetDatastoreInfo().Url
		}
	}
	if dsDir == "" {
		return fmt.Errorf("datastore %s of VM %s not found", out.Datastore, vm.Name)
	}
	out.VMDir = filepath.Join(dsDir, path.Dir(vmx[i+2:]))

	host := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	out.Host = host.Name
	var parts []string
	var ref *types.ManagedObjectReference = host.Parent
	for ref != nil {
		obj := simulator.Map.Get(*ref)
		ent, ok := obj.(mo.Entity)
		if !ok {
			break
		}
		me := ent.Entity()
		switch obj.(type) {
		case *simulator.Datacenter:
			out.Datacenter = me.Name
			parts = append([]string{me.Name}, parts...)
		case *simulator.ClusterComputeResource:
			parts = append([]string{me.Name}, parts...)
		case *simulator.Folder:
			// the hidden host/ folders are not in libvirt's path
			if me.Name != "host" && me.Name != "Datacenters" && me.Parent != nil {
				parts = append([]string{me.Name}, parts...)
			}
		}
		ref = me.Parent
	}
	parts = append(parts, host.Name)
	out.HostPath = strings.Join(parts, "/")
	return nil
}

const vmxTemplate = `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "14"
displayName = "%s"
guestOS = "debian11-64"
memsize = "%d"
numvcpus = "%d"
uuid.bios = "%s"
%sscsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "disk1.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "%s"
`

// stage replaces the VM's empty placeholder files with a real .vmx, a
// monolithicFlat descriptor and the raw image (a symlink: the file service
// follows it and the image is never written).
func stage(vm *simulator.VirtualMachine, out *info, guest, mac string, memsize, cpus int, firmware string) error {
	abs, err := filepath.Abs(guest)
	if err != nil {
		return err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if st.Size()%512 != 0 {
		return fmt.Errorf("size %d is not a multiple of 512", st.Size())
	}
	if err := os.MkdirAll(out.VMDir, 0o755); err != nil {
		return err
	}
	// libvirt knows "efi" only; BIOS is the absence of the key.
	fw := ""
	if firmware == "efi" {
		fw = "firmware = \"efi\"\n"
	}
	uuid := vmxUUID(out.VMUUID)
	vmx := fmt.Sprintf(vmxTemplate, vm.Name, memsize, cpus, uuid, fw, mac)
	if err := ioutil.WriteFile(filepath.Join(out.VMDir, vm.Name+".vmx"), []byte(vmx), 0o644); err != nil {
		return err
	}
	sectors := st.Size() / 512
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"vmfs\"\n\n# Extent description\nRW %d VMFS \"disk1-flat.vmdk\"\n\n"+
		"# The Disk Data Base\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n"+
		"ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n",
		sectors, sectors/(255*63))
	if err := ioutil.WriteFile(filepath.Join(out.VMDir, "disk1.vmdk"), []byte(desc), 0o644); err != nil {
		return err
	}
	flat := filepath.Join(out.VMDir, "disk1-flat.vmdk")
	_ = os.Remove(flat)
	return os.Symlink(abs, flat)
}

// stageAll stages the guest into every other VM of the staged VM's host
// too (each its own .vmx and descriptor, the same image linked), so a
// benchmark's dumpxml of every VM reads a real .vmx.
func stageAll(staged *simulator.VirtualMachine, out *info, guest string, memsize, cpus int, firmware string) error {
	n := 0
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm == staged || *vm.Runtime.Host != *staged.Runtime.Host {
			continue
		}
		o := info{VMUUID: vm.Config.Uuid}
		if err := locate(vm, &o); err != nil {
			return err
		}
		n++
		mac := fmt.Sprintf("00:50:56:%02x:%02x:%02x", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
		if err := stage(vm, &o, guest, mac, memsize, cpus, firmware); err != nil {
			return fmt.Errorf("%s: %v", vm.Name, err)
		}
	}
	return nil
}

// vmxUUID writes a UUID the way .vmx files do: "56 4d ... 12-34 ...".
func vmxUUID(u string) string {
	h := strings.ReplaceAll(u, "-", "")
	if len(h) != 32 {
		return u
	}
	var b strings.Builder
	for i := 0; i < 32; i += 2 {
		if i == 16 {
			b.WriteString("-")
		} else if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// serveProxy serves TLS on 127.0.0.1:0 in front of the simulator.  Why:
// libvirt's ESX driver (9.0) reads every value of an anyType element by
// its xsi:type attribute and fails with "AnyType is missing 'type'
// property" where govmomi 0.24's simulator writes array items without one;
// the proxy adds the attribute, everything else (the /folder datastore
// files with Range requests) passes through untouched.
func serveProxy(backend *url.URL, certs []tls.Certificate) (*http.Server, int) {
	rp := httputil.NewSingleHostReverseProxy(backend)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	rp.FlushInterval = -1
	rp.ModifyResponse = func(r *http.Response) error {
		if !strings.HasPrefix(r.Request.URL.Path, "/sdk") ||
			!strings.Contains(r.Header.Get("Content-Type"), "xml") {
			return nil
		}
		body, err := ioutil.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		body = addXsiTypes(body)
		if t := os.Getenv("VSPHERE_SIM_TRACE"); t != "" {
			if f, err := os.OpenFile(t, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
				fmt.Fprintf(f, "==== %s\n%s\n", r.Request.URL.Path, body)
				f.Close()
			}
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("listen: %v", err)
	}
	s := &http.Server{Handler: rp, TLSConfig: &tls.Config{Certificates: certs},
		ErrorLog: log.New(ioutil.Discard, "", 0)}
	go func() { _ = s.ServeTLS(ln, "", "") }()
	return s, ln.Addr().(*net.TCPAddr).Port
}

// An anyType value holding an array: <val ...:type="ArrayOfT">...</val>.
// Property values are never nested, so the value ends at the next </val>.
var arrayVal = regexp.MustCompile(`<val [^>]*type="ArrayOf(\w+)"[^>]*>`)

var xsdTypes = map[string]bool{"string": true, "int": true, "long": true, "short": true,
	"byte": true, "boolean": true, "dateTime": true, "base64Binary": true, "anyURI": true}

// addXsiTypes puts xsi:type="T" on every <T> item of an ArrayOfT value
// that lacks one (xsd:T for the XML Schema primitives).
func addXsiTypes(body []byte) []byte {
	var out bytes.Buffer
	for {
		loc := arrayVal.FindSubmatchIndex(body)
		if loc == nil {
			out.Write(body)
			return out.Bytes()
		}
		end := bytes.Index(body[loc[1]:], []byte("</val>"))
		if end < 0 {
			out.Write(body)
			return out.Bytes()
		}
		end += loc[1]
		item := string(body[loc[2]:loc[3]])
		typ := item
		if xsdTypes[item] {
			typ = "xsd:" + item
		}
		out.Write(body[:loc[1]])
		inner := string(body[loc[1]:end])
		inner = strings.ReplaceAll(inner, "<"+item+">", "<"+item+` xsi:type="`+typ+`">`)
		inner = strings.ReplaceAll(inner, "<"+item+" ", "<"+item+` xsi:type="`+typ+`" `)
		// an item that had a type already now has two: keep the original
		inner = strings.ReplaceAll(inner, ` xsi:type="`+typ+`" xsi:type=`, " xsi:type=")
		out.WriteString(inner)
		body = body[end:]
	}
}
