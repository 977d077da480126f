# SPDX-License-Identifier: Apache-2.0
"""Wire formats for the local AWS endpoint, driven by botocore's models.

Requests (EC2 and STS query protocol) are parsed by walking the operation's
input shape, the inverse of botocore's EC2Serializer/QuerySerializer, so a
parameter the real service would not accept is rejected here too.
Responses (EC2 XML) are written by walking the output shape with
ElementTree, the inverse of botocore's EC2 response parser.
"""

import base64
import datetime
import hmac
import hashlib
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.loaders
import botocore.model
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"

_loader = botocore.loaders.Loader()
_models = {}


_models_lock = threading.Lock()


def service_model(name):
    """botocore.model.ServiceModel for ec2, ebs or sts (cached)."""
    with _models_lock:
        if name not in _models:
            _models[name] = botocore.model.ServiceModel(
                _loader.load_service_model(name, "service-2"), name)
        return _models[name]


class ApiError(Exception):
    """An error the service returns to the caller, named as AWS names it."""

    def __init__(self, code, message, status=400, reason=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------- requests

def _query_key(member_name, shape, ec2):
    ser = shape.serialization
    if ec2:
        if "queryName" in ser:
            return ser["queryName"]
        if "name" in ser:
            return ser["name"][0].upper() + ser["name"][1:]
        return member_name
    return ser.get("name", member_name)


def _scalar(shape, key, raw):
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(raw)
        if t in ("float", "double"):
            return float(raw)
        if t == "boolean":
            low = raw.lower()
            if low not in ("true", "false"):
                raise ValueError(raw)
            return low == "true"
        if t == "timestamp":
            return parse_time(raw)
        if t == "blob":
            return base64.b64decode(raw)
    except ValueError:
        raise ApiError("InvalidParameterValue",
                       "Value (%s) for parameter %s is invalid. Expected a %s."
                       % (raw, key, t))
    return raw


def _parse(shape, params, key, used, ec2):
    t = shape.type_name
    if t == "structure":
        out = {}
        for mname, mshape in shape.members.items():
            k = _query_key(mname, mshape, ec2)
            full = key + "." + k if key else k
            v = _parse(mshape, params, full, used, ec2)
            if v is not None:
                out[mname] = v
        if key and not out:
            return None
        for req in shape.required_members:
            if req not in out:
                name = _query_key(req, shape.members[req], ec2)
                raise ApiError("MissingParameter",
                               "The request must contain the parameter %s"
                               % ((key + "." if key else "") + name))
        return out
    if t == "list":
        # EC2 lists are always flattened: Key.1, Key.2 ...  Query (STS)
        # lists are Key.member.N unless flattened.
        prefix = key + "."
        if not ec2 and not shape.serialization.get("flattened"):
            prefix = key + "." + shape.member.serialization.get("name", "member") + "."
        idx = set()
        for p in params:
            if p.startswith(prefix):
                n = p[len(prefix):].split(".", 1)[0]
                if n.isdigit():
                    idx.add(int(n))
        if not idx:
            return None
        return [_parse(shape.member, params, prefix + str(i), used, ec2)
                for i in sorted(idx)]
    if t == "map":
        return None
    if key in params:
        used.add(key)
        return _scalar(shape, key, params[key])
    return None


def parse_query(service, params):
    """Parse flat query parameters into the operation's input dict.

    Returns (operation_model, input_dict).  Raises ApiError for unknown
    actions, unknown parameters, bad values and missing required ones.
    """
    model = service_model(service)
    action = params.get("Action")
    if not action:
        raise ApiError("MissingAction", "The request must contain the parameter Action")
    try:
        op = model.operation_model(action)
    except botocore.model.OperationNotFoundError:
        raise ApiError("InvalidAction",
                       "The action %s is not valid for this web service." % action)
    used = {"Action", "Version"}
    ec2 = service == "ec2"
    data = {}
    if op.input_shape is not None:
        data = _parse(op.input_shape, params, "", used, ec2)
    # Tell the caller which parameter it got wrong; AWS does the same.
    unknown = sorted(k for k in params if k not in used)
    if unknown:
        raise ApiError("UnknownParameter",
                       "The parameter %s is not recognized" % unknown[0])
    return op, data


# ---------------------------------------------------------------- responses

def iso(ts):
    """AWS's XML timestamp: 2026-11-24T21:00:00.000Z."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_time(raw):
    raw = raw.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    raw = raw.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(raw).timestamp()


def _text(shape, value):
    t = shape.type_name
    if t == "boolean":
        return "true" if value else "false"
    if t == "timestamp":
        return iso(value) if isinstance(value, (int, float)) else str(value)
    if t == "blob":
        return base64.b64encode(value).decode()
    return str(value)


def xml_value(parent, name, shape, value):
    """Append <name> for value, following shape (EC2/query XML rules)."""
    t = shape.type_name
    if t == "list" and shape.serialization.get("flattened"):
        for v in value:
            xml_value(parent, name, shape.member, v)
        return
    el = ET.SubElement(parent, name)
    if t == "structure":
        xml_struct(el, shape, value)
    elif t == "list":
        item = shape.member.serialization.get("name", "member")
        for v in value:
            xml_value(el, item, shape.member, v)
    elif t == "map":
        for k, v in value.items():
            entry = ET.SubElement(el, "entry")
            ET.SubElement(entry, "key").text = str(k)
            xml_value(entry, "value", shape.value, v)
    else:
        el.text = _text(shape, value)


def xml_struct(el, shape, value):
    for mname, mshape in shape.members.items():
        if mname in value and value[mname] is not None:
            xml_value(el, mshape.serialization.get("name", mname), mshape, value[mname])


def ec2_response(op, data, request_id, fragments=None):
    """Serialize an EC2 response.  fragments: pre-rendered XML bytes that
    replace the list named by fragments[0] (used for DescribeInstances)."""
    root = ET.Element(op.name + "Response", xmlns=EC2_NS)
    ET.SubElement(root, "requestId").text = request_id
    if op.output_shape is not None:
        xml_struct(root, op.output_shape, data)
    body = ET.tostring(root, encoding="unicode")
    if fragments:
        tag, parts = fragments
        empty = "<%s />" % tag
        if empty in body:
            body = body.replace(empty, "<%s>%s</%s>" % (tag, "".join(parts), tag), 1)
        else:
            body = body.replace("</%s>" % tag, "".join(parts) + "</%s>" % tag, 1)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def ec2_fragment(shape, name, value):
    """One pre-rendered element, without namespace, for later splicing."""
    holder = ET.Element("x")
    xml_value(holder, name, shape, value)
    return ET.tostring(holder[0], encoding="unicode")


def ec2_error(code, message, request_id):
    root = ET.Element("Response")
    errs = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(errs, "Code").text = code
    ET.SubElement(errs, "Message").text = message
    ET.SubElement(root, "RequestID").text = request_id
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode")).encode()


def sts_response(op, data, request_id):
    root = ET.Element(op.name + "Response", xmlns=STS_NS)
    res = ET.SubElement(root, op.name + "Result")
    xml_struct(res, op.output_shape, data)
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id
    return ET.tostring(root, encoding="unicode").encode()


def sts_error(code, message, request_id, sender=True):
    root = ET.Element("ErrorResponse", xmlns=STS_NS)
    err = ET.SubElement(root, "Error")
    ET.SubElement(err, "Type").text = "Sender" if sender else "Receiver"
    ET.SubElement(err, "Code").text = code
    ET.SubElement(err, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return ET.tostring(root, encoding="unicode").encode()


# ---------------------------------------------------------------- SigV4

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request\s*,"
    r"\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")


def parse_authorization(value):
    """Split a SigV4 Authorization header; None if it is not one."""
    m = _AUTH_RE.match(value or "")
    if not m:
        return None
    return {"access_key": m.group(1), "date": m.group(2), "region": m.group(3),
            "service": m.group(4), "signed_headers": m.group(5).split(";"),
            "signature": m.group(6)}


def expected_signature(auth, secret, method, raw_path, headers, body):
    """Recompute the signature with botocore's own signer.

    raw_path is the request target exactly as received (already escaped,
    as the signer saw it); headers are the received headers.
    """
    hdrs = {}
    for h in auth["signed_headers"]:
        v = headers.get(h)
        if v is None:
            return None
        hdrs[h] = v
    host = headers.get("host", "localhost")
    req = AWSRequest(method=method, url="http://" + host + raw_path,
                     headers=hdrs, data=body)
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        return None
    req.context["timestamp"] = amz_date
    token = headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(auth["access_key"], secret, token),
                       auth["service"], auth["region"])
    canonical = signer.canonical_request(req)
    sts = signer.string_to_sign(req, canonical)
    return signer.signature(sts, req)


def signatures_equal(a, b):
    return a is not None and hmac.compare_digest(a, b)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def form_params(raw_query, body, content_type):
    """Merge query-string and form-body parameters (EC2 accepts both)."""
    params = {}
    for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        params[k] = v
    # A POST without Content-Type is read as a form, as EC2 does.
    if body and (not content_type or "x-www-form-urlencoded" in content_type):
        for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True):
            params[k] = v
    return params
