/*
 * store: the backend registry and the helpers shared by every backend.
 * See store.h.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Every compiled-in backend.  A config value selects one when it equals
 * the backend's name ("sqlite") or starts with "<name>://" (a URI such as
 * "postgresql://host/db"). */
static const struct store_backend *const backends[] = {
	&store_backend_sqlite,
#ifdef STORE_HAVE_PG
	&store_backend_pg,
#endif
};

const struct store_backend *
store_backend_find(const char *uri)
{
	size_t i, n;

	if (uri == NULL)
		return NULL;
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		n = strlen(backends[i]->name);
		if (strncmp(uri, backends[i]->name, n) != 0)
			continue;
		if (uri[n] == '\0' || strncmp(uri + n, "://", 3) == 0)
			return backends[i];
	}
	return NULL;
}

void
store_msg_clear(struct store_msg *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	for (i = 0; i < msg->nrcpt && msg->rcpts != NULL; i++) {
		free(msg->rcpts[i].orcpt);
		free(msg->rcpts[i].final_rcpt);
		free(msg->rcpts[i].remote_mta);
		free(msg->rcpts[i].reply);
	}
	free(msg->rcpts);
	free(msg->envid);
	free(msg->sender);
	free(msg->reporting_mta);
	msg->rcpts = NULL;
	msg->nrcpt = 0;
	msg->envid = NULL;
	msg->sender = NULL;
	msg->reporting_mta = NULL;
}

void
store_msgs_free(struct store_msg *msgs, size_t n)
{
	size_t i;

	if (msgs == NULL)
		return;
	for (i = 0; i < n; i++)
		store_msg_clear(&msgs[i]);
	free(msgs);
}

const char *
store_action_name(enum store_action a)
{
	switch (a) {
	case STORE_ACTION_QUEUED:
	case STORE_ACTION_DELAYED:
		return "delayed";
	case STORE_ACTION_DELIVERED:
		return "delivered";
	case STORE_ACTION_TRANSFERRED:
		return "transferred";
	case STORE_ACTION_RELAYED:
		return "relayed";
	case STORE_ACTION_EXPANDED:
		return "expanded";
	case STORE_ACTION_FAILED:
		return "failed";
	}
	return "unknown";
}
