/* SPDX-License-Identifier: Apache-2.0 */
/* The provider's export list, read straight from its ELF .dynsym: users'
 * machines need not have nm.  Every offset is bounds-checked, since the
 * file may be anything. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conformance.h"

static bool
in_file (size_t size, uint64_t off, uint64_t len)
{
  return off <= size && len <= size - off;
}

static bool
exported (unsigned bind, unsigned type, unsigned shndx)
{
  return (bind == STB_GLOBAL || bind == STB_WEAK || bind == STB_GNU_UNIQUE)
         && (type == STT_FUNC || type == STT_OBJECT || type == STT_GNU_IFUNC || type == STT_TLS)
         && shndx != SHN_UNDEF;
}

#define SCAN(Ehdr, Shdr, Sym, ST_BIND, ST_TYPE)                                                \
  do {                                                                                         \
    const Ehdr *eh = (const Ehdr *) base;                                                      \
    const Shdr *sh;                                                                            \
    if (!in_file (size, 0, sizeof *eh) || eh->e_shoff == 0 || eh->e_shentsize != sizeof (Shdr) \
        || !in_file (size, eh->e_shoff, (uint64_t) eh->e_shnum * sizeof (Shdr))) {             \
      err = "it has no readable section header table";                                         \
      break;                                                                                   \
    }                                                                                          \
    sh = (const Shdr *) (base + eh->e_shoff);                                                  \
    for (unsigned i = 0; i < eh->e_shnum; i++) {                                               \
      const Shdr *ds = &sh[i], *ss;                                                            \
      if (ds->sh_type != SHT_DYNSYM)                                                           \
        continue;                                                                              \
      found = true;                                                                            \
      if (ds->sh_link >= eh->e_shnum || ds->sh_entsize != sizeof (Sym)                         \
          || !in_file (size, ds->sh_offset, ds->sh_size)) {                                    \
        err = "its .dynsym section is malformed";                                              \
        break;                                                                                 \
      }                                                                                        \
      ss = &sh[ds->sh_link];                                                                   \
      if (!in_file (size, ss->sh_offset, ss->sh_size)) {                                       \
        err = "its .dynstr section is malformed";                                              \
        break;                                                                                 \
      }                                                                                        \
      const Sym *sym = (const Sym *) (base + ds->sh_offset);                                   \
      size_t n = ds->sh_size / sizeof (Sym);                                                   \
      const char *str = base + ss->sh_offset;                                                  \
      for (size_t k = 1; k < n; k++) {                                                         \
        if (!exported (ST_BIND (sym[k].st_info), ST_TYPE (sym[k].st_info), sym[k].st_shndx))   \
          continue;                                                                            \
        if (sym[k].st_name >= ss->sh_size                                                      \
            || memchr (str + sym[k].st_name, '\0', ss->sh_size - sym[k].st_name) == NULL) {    \
          err = "a .dynsym name lies outside .dynstr";                                         \
          break;                                                                               \
        }                                                                                      \
        json_array_append_new (names, pc_text (str + sym[k].st_name));                         \
      }                                                                                        \
    }                                                                                          \
  } while (0)

json_t *
pc_elf_exports (const char *path, char **why)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  const char *base, *err = NULL;
  size_t size;
  bool found = false;
  json_t *names;

  *why = NULL;
  if (fd == -1) {
    if (asprintf (why, "%s: cannot open: %s", path, strerror (errno)) < 0)
      *why = NULL;
    return NULL;
  }
  if (fstat (fd, &st) == -1 || st.st_size < EI_NIDENT) {
    close (fd);
    if (asprintf (why, "%s: not an ELF file (too short)", path) < 0)
      *why = NULL;
    return NULL;
  }
  size = (size_t) st.st_size;
  base = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (base == MAP_FAILED) {
    if (asprintf (why, "%s: cannot map: %s", path, strerror (errno)) < 0)
      *why = NULL;
    return NULL;
  }
  names = json_array ();
  if (memcmp (base, ELFMAG, SELFMAG) != 0)
    err = "it is not an ELF file";
  else if (base[EI_DATA] != ELFDATA2LSB && base[EI_DATA] != ELFDATA2MSB)
    err = "its ELF data encoding is unknown";
  else if ((base[EI_DATA] == ELFDATA2LSB) != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__))
    err = "its byte order is not this machine's, so it cannot be loaded here";
  else if (base[EI_CLASS] == ELFCLASS64)
    SCAN (Elf64_Ehdr, Elf64_Shdr, Elf64_Sym, ELF64_ST_BIND, ELF64_ST_TYPE);
  else if (base[EI_CLASS] == ELFCLASS32)
    SCAN (Elf32_Ehdr, Elf32_Shdr, Elf32_Sym, ELF32_ST_BIND, ELF32_ST_TYPE);
  else
    err = "its ELF class is unknown";
  if (err == NULL && !found)
    err = "it has no .dynsym section (not a shared object?)";
  munmap ((void *) base, size);
  if (err) {
    json_decref (names);
    if (asprintf (why, "%s: %s", path, err) < 0)
      *why = NULL;
    return NULL;
  }
  return names;
}
