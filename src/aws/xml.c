/*
 * xml.c - reading values out of AWS's XML answers (query and rest-xml
 * protocols) with libxml2. Entities are never expanded and nothing is
 * fetched from the network.
 */
#include "aws/aws-internal.h"

#include "util/alloc.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

static xmlDocPtr parse(const char *body, size_t len)
{
	if (len > (size_t)INT32_MAX)
		return NULL;
	return xmlReadMemory(body, (int)len, "response.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static xmlNodePtr find(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr n = node; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (!strcmp((const char *)n->name, name))
			return n;
		xmlNodePtr d = find(n->children, name);
		if (d)
			return d;
	}
	return NULL;
}

static char *content(xmlNodePtr n)
{
	xmlChar *c = xmlNodeGetContent(n);
	char *s = xstrdup(c ? (const char *)c : "");
	xmlFree(c);
	return s;
}

/* Follows "A/B/C": each part the first element of that name below the last. */
static xmlNodePtr walk(xmlDocPtr doc, const char *path)
{
	xmlNodePtr node = xmlDocGetRootElement(doc);
	char part[128];
	for (const char *p = path; node && *p;) {
		size_t n = strcspn(p, "/");
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		node = find(node, part);
		p += n + (p[n] == '/');
		if (node && *p)
			node = node->children;
	}
	return node;
}

char *xml_text(const char *body, size_t len, const char *path)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return NULL;
	xmlNodePtr n = walk(doc, path);
	char *s = n ? content(n) : NULL;
	xmlFreeDoc(doc);
	return s;
}

int xml_each_pair(const char *body, size_t len, const char *parent, const char *a, const char *b,
                  void (*fn)(void *arg, const char *a_text, const char *b_text), void *arg)
{
	xmlDocPtr doc = parse(body, len);
	if (!doc)
		return -1;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, parent) != 0)
			continue;
		xmlNodePtr x = find(n->children, a), y = find(n->children, b);
		if (!x)
			continue;
		char *xs = content(x), *ys = y ? content(y) : xstrdup("");
		fn(arg, xs, ys);
		free(xs);
		free(ys);
	}
	xmlFreeDoc(doc);
	return 0;
}
