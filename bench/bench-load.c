/* SPDX-License-Identifier: Apache-2.0 */
/* pallet-bench-load: the cost of loading a provider.
 *
 *   pallet-bench-load PROVIDER.so [N]
 *
 * N times (default 1000; N/10 for "cold"), interleaved: a bare dlopen+dlclose of the .so
 * (the denominator), and pallet_module_load+pallet_module_free (dlopen,
 * entry point, ABI negotiation, vtable copy and checks).  Twice: "cold",
 * where every dlclose also unmaps the libraries the .so pulls in (what one
 * `pallet` run pays), and "resident", with those libraries held open, so
 * only the .so itself is mapped each time.  Prints one JSON object with
 * the medians and 90th percentiles in microseconds.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pallet/host.h>

static double
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Sorts v; the q-quantile (nearest rank). */
static double
quantile (double *v, size_t n, double q)
{
  qsort (v, n, sizeof *v, cmp_double);
  size_t i = (size_t) (q * (double) (n - 1) + 0.5);
  return v[i];
}

struct held {
  const char *skip; /* the provider itself */
  void *dl[256];
  size_t n;
};

/* dl_iterate_phdr callback: dlopen every loaded object with a path but
 * the provider, so its libraries stay mapped after it is closed. */
static int
hold_one (struct dl_phdr_info *info, size_t size, void *opaque)
{
  struct held *h = opaque;
  (void) size;
  if (info->dlpi_name == NULL || info->dlpi_name[0] != '/'
      || strstr (info->dlpi_name, h->skip) != NULL || h->n == 256)
    return 0;
  void *dl = dlopen (info->dlpi_name, RTLD_NOW | RTLD_LOCAL);
  if (dl)
    h->dl[h->n++] = dl;
  return 0;
}

struct stats {
  double bare_med, bare_p90, load_med, load_p90;
};

/* n interleaved rounds of bare dlopen/dlclose and pallet_module_load/free. */
static int
rounds (const char *so, long n, double *bare, double *load, struct stats *st)
{
  for (long i = 0; i < n; i++) {
    double t0 = now_us ();
    void *dl = dlopen (so, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
      fprintf (stderr, "pallet-bench-load: dlopen %s: %s\n", so, dlerror ());
      return -1;
    }
    dlclose (dl);
    bare[i] = now_us () - t0;

    struct pallet_module *m;
    t0 = now_us ();
    if (pallet_module_load (so, 0, &m) != PALLET_OK) {
      fprintf (stderr, "pallet-bench-load: %s\n", pallet_last_error ());
      return -1;
    }
    pallet_module_free (m);
    load[i] = now_us () - t0;
  }
  st->bare_med = quantile (bare, (size_t) n, 0.5);
  st->bare_p90 = quantile (bare, (size_t) n, 0.9);
  st->load_med = quantile (load, (size_t) n, 0.5);
  st->load_p90 = quantile (load, (size_t) n, 0.9);
  return 0;
}

int
main (int argc, char *argv[])
{
  if (argc < 2 || argc > 3) {
    fprintf (stderr, "usage: pallet-bench-load PROVIDER.so [N]\n");
    return 2;
  }
  const char *so = argv[1];
  long n = argc == 3 ? strtol (argv[2], NULL, 10) : 1000;
  if (n < 1 || n > 1000000) {
    fprintf (stderr, "pallet-bench-load: N '%s' must be 1..1000000\n", argv[2]);
    return 2;
  }
  if (strchr (so, '/') == NULL) {
    fprintf (stderr,
             "pallet-bench-load: '%s' is not a path: pass the "
             "provider's path, e.g. build/providers/pallet-provider-ec2.so\n",
             so);
    return 2;
  }
  double *bare = calloc ((size_t) n, sizeof *bare);
  double *load = calloc ((size_t) n, sizeof *load);
  if (!bare || !load) {
    fprintf (stderr, "pallet-bench-load: out of memory\n");
    return 1;
  }
  /* The first load maps the .so and its libraries from a cold state;
   * time it apart, then alternate the two so drift hits both alike. */
  double t0 = now_us ();
  struct pallet_module *m;
  if (pallet_module_load (so, 0, &m) != PALLET_OK) {
    fprintf (stderr, "pallet-bench-load: %s\n", pallet_last_error ());
    return 1;
  }
  pallet_module_free (m);
  double first = now_us () - t0;

  struct stats cold, warm;
  long ncold = n >= 100 ? n / 10 : n; /* ~0.1 s each: fewer rounds */
  if (rounds (so, ncold, bare, load, &cold) == -1)
    return 1;

  /* Hold the provider's libraries, then measure again. */
  void *dl = dlopen (so, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    fprintf (stderr, "pallet-bench-load: dlopen %s: %s\n", so, dlerror ());
    return 1;
  }
  const char *base = strrchr (so, '/') + 1;
  struct held h = { .skip = base, .n = 0 };
  dl_iterate_phdr (hold_one, &h);
  dlclose (dl);
  if (rounds (so, n, bare, load, &warm) == -1)
    return 1;
  for (size_t i = 0; i < h.n; i++)
    dlclose (h.dl[i]);

  printf ("{\"n\": %ld, \"n_cold\": %ld, \"first_load_us\": %.1f, "
          "\"bare_median_us\": %.1f, \"bare_p90_us\": %.1f, "
          "\"load_median_us\": %.1f, \"load_p90_us\": %.1f, "
          "\"libraries_held\": %zu, "
          "\"resident_bare_median_us\": %.1f, \"resident_bare_p90_us\": %.1f, "
          "\"resident_load_median_us\": %.1f, \"resident_load_p90_us\": %.1f}\n",
          n, ncold, first, cold.bare_med, cold.bare_p90, cold.load_med, cold.load_p90, h.n,
          warm.bare_med, warm.bare_p90, warm.load_med, warm.load_p90);
  free (bare);
  free (load);
  return 0;
}
