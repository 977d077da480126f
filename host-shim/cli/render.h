/* SPDX-License-Identifier: Apache-2.0 */
/* The pallet CLI's renderers: libpallet-host reports events, these turn
 * them into text, JSON lines, YAML and TTY progress bars. */
#ifndef PALLET_CLI_RENDER_H
#define PALLET_CLI_RENDER_H

#include <pthread.h>
#include <stdint.h>
#include <jansson.h>
#include <yaml.h>

#include "pallet/host.h"

enum cli_format { CLI_TEXT, CLI_JSON, CLI_YAML, CLI_TABLE };

/* One progress bar's rate baseline. */
struct cli_rate {
  char key[192];
  double t0;
  uint64_t d0;
};

struct cli_render {
  int format; /* enum cli_format */
  int tty;    /* draw progress bars on stderr */
  int bar_drawn;
  pthread_mutex_t mu; /* logs come from the global handler too */
  yaml_emitter_t y;
  int y_open;
  char **findings; /* validate, text: held until the verdict */
  size_t n_findings;
  struct cli_rate rates[32];
  int n_rates;
  /* inventory */
  int inventory;
  size_t n_items;
  char *cols[8];
  int ncols;
  int failed; /* an output error happened */
};

/* Parses "-o FORMAT": 0, or -1 if fmt is none of allowed (a mask of
 * 1 << enum cli_format). */
int Pallet_format_parse (const char *fmt, int allowed, int *out);

void Pallet_render_init (struct cli_render *r, int format, int tty);
/* Ends open documents; 0, or -1 if writing failed. */
int Pallet_render_finish (struct cli_render *r);

/* migrate, cleanup, validate. */
pallet_event_fn Pallet_render_event;
/* The process-wide handler: log lines on stderr. */
pallet_event_fn Pallet_render_log;
/* inventory: items as a table, a JSON array or a YAML sequence. */
pallet_event_fn Pallet_render_item;
/* Starts the inventory output (the YAML sequence). */
void Pallet_render_items_begin (struct cli_render *r);

/* One value on stdout: indented JSON, or YAML (an array as one document
 * per element when documents is set).  0, or -1 if writing failed. */
int Pallet_render_value (json_t *v, int format, int documents);

/* A table: headers (NULL-terminated) over rows (an array of arrays of
 * strings), each column as wide as its widest cell. */
void Pallet_render_table (const char *const *headers, const json_t *rows);

/* Prints why a provider did not load; when it is not installed, also the
 * providers that are and where a module goes. */
void Pallet_render_load_error (const char *name);

/* Words for a status name such as "PALLET_E_INVALID" ("bad input (JSON,
 * plan or config)"); other names come back as they are. */
const char *Pallet_render_status_words (const char *status);

#endif
