// SPDX-License-Identifier: LGPL-2.1-or-later
/* The store of a repository, by its name (lib/repo/store.h). */
#include <string.h>

#include "repo/repo.h"
#include "repo/store.h"

int store_fault(const char *step, const char *name)
{
	return repo_fault_hook ? repo_fault_hook(step, name) : 0;
}

const struct store_ops *store_of(const char *where)
{
	return strncmp(where, "rados://", 8) ? &store_dir_ops : &store_rados_ops;
}
