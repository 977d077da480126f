# SPDX-License-Identifier: Apache-2.0
"""kube_store without a server: selectors, the three patch formats,
resourceVersion conflicts and the watch event log."""

import unittest

from kube_store import (ApiError, Store, json_patch, matches, merge_patch,
                        parse_field_selector, parse_label_selector, strategic_merge_patch)


def obj(name, labels=None, **extra):
    return dict({"metadata": {"name": name, "labels": labels or {}}}, **extra)


class Selectors(unittest.TestCase):
    def sel(self, text, labels):
        return matches(obj("x", labels), parse_label_selector(text), [])

    def test_label_terms(self):
        self.assertTrue(self.sel("a=1,b==2", {"a": "1", "b": "2"}))
        self.assertFalse(self.sel("a=1", {"a": "2"}))
        self.assertTrue(self.sel("a!=1", {}))
        self.assertTrue(self.sel("a in (1, 2),b notin (3)", {"a": "2", "b": "4"}))
        self.assertFalse(self.sel("a in (1,2)", {}))
        self.assertTrue(self.sel("a,!b", {"a": ""}))
        self.assertFalse(self.sel("!a", {"a": "x"}))
        self.assertTrue(self.sel("", {"anything": "x"}))

    def test_bad_terms_are_named(self):
        for bad in ("a=1=2", "a in 1", "=x", "a ~ b"):
            with self.assertRaises(ValueError) as cm:
                parse_label_selector(bad)
            self.assertIn(repr(bad), str(cm.exception))

    def test_fields(self):
        o = obj("p1", status={"phase": "Running"})
        self.assertTrue(matches(o, [], parse_field_selector("metadata.name=p1")))
        self.assertFalse(matches(o, [], parse_field_selector("status.phase!=Running")))
        with self.assertRaises(ValueError) as cm:
            parse_field_selector("spec.foo=1")
        self.assertIn("field label not supported: spec.foo", str(cm.exception))


class Patches(unittest.TestCase):
    def test_merge_patch(self):
        cur = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
        self.assertEqual(merge_patch(cur, {"a": {"b": None, "d": 3}, "l": [3]}),
                         {"a": {"c": 2, "d": 3}, "l": [3]})
        self.assertEqual(cur, {"a": {"b": 1, "c": 2}, "l": [1, 2]}, "input untouched")

    def test_strategic_merge_by_key(self):
        cur = {"spec": {"containers": [{"name": "a", "image": "x", "env": [
            {"name": "E", "value": "1"}]}, {"name": "b", "image": "y"}]}}
        patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                          "containers": [{"name": "a", "env": [{"name": "F", "value": "2"}]},
                                         {"name": "b", "$patch": "delete"},
                                         {"name": "c", "image": "z"}]}}
        got = strategic_merge_patch(cur, patch)["spec"]["containers"]
        self.assertEqual([c["name"] for c in got], ["a", "c"])
        self.assertEqual(got[0]["image"], "x")
        self.assertEqual(got[0]["env"], [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}])
        # Lists without a merge key are replaced.
        self.assertEqual(strategic_merge_patch({"args": [1, 2]}, {"args": [3]}), {"args": [3]})

    def test_json_patch(self):
        doc = {"data": {"a": "1"}, "l": [1]}
        got = json_patch(doc, [{"op": "add", "path": "/data/b", "value": "2"},
                               {"op": "replace", "path": "/data/a", "value": "3"},
                               {"op": "add", "path": "/l/-", "value": 2},
                               {"op": "remove", "path": "/l/0"},
                               {"op": "test", "path": "/data/b", "value": "2"}])
        self.assertEqual(got, {"data": {"a": "3", "b": "2"}, "l": [2]})
        for ops, msg in (([{"op": "replace", "path": "/nope", "value": 1}], "does not exist"),
                         ([{"op": "move", "path": "/a", "from": "/b"}], "not served"),
                         ([{"op": "test", "path": "/data/a", "value": "x"}], "test failed"),
                         ([{"op": "add", "path": "data", "value": 1}], "does not start")):
            with self.assertRaises(ApiError) as cm:
                json_patch(doc, ops)
            self.assertIn(msg, cm.exception.message)


class StoreTest(unittest.TestCase):
    def test_versions_conflicts_and_events(self):
        s = Store()
        a = s.create("configmaps", "ns", {"metadata": {"name": "a"}, "data": {}}, "ConfigMap")
        rv = a["metadata"]["resourceVersion"]
        with self.assertRaises(ApiError) as cm:
            s.create("configmaps", "ns", {"metadata": {"name": "a"}}, "ConfigMap")
        self.assertEqual(cm.exception.code, 409)
        b = s.replace("configmaps", "ns", "a", dict(a, data={"k": "v"}))
        self.assertGreater(int(b["metadata"]["resourceVersion"]), int(rv))
        with self.assertRaises(ApiError) as cm:
            s.replace("configmaps", "ns", "a", dict(a, data={"k": "stale"}))
        self.assertEqual((cm.exception.code, cm.exception.reason), (409, "Conflict"))
        g = s.create("configmaps", "ns", {"metadata": {"generateName": "g-"}}, "ConfigMap")
        self.assertTrue(g["metadata"]["name"].startswith("g-"))
        s.delete("configmaps", "ns", "a")
        with self.assertRaises(ApiError) as cm:
            s.delete("configmaps", "ns", "a")
        self.assertEqual(cm.exception.code, 404)
        types = [e[1] for e in s.events_since(int(rv) - 1)]
        self.assertEqual(types, ["ADDED", "MODIFIED", "ADDED", "DELETED"])
        s.first_event_rv = int(rv) + 1
        with self.assertRaises(ApiError) as cm:
            s.events_since(int(rv))
        self.assertEqual(cm.exception.code, 410)


if __name__ == "__main__":
    unittest.main()
