#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *qembed_version(void) {
    return QEMBED_VERSION_STRING;
}
int qembed_version_number(void) {
    return QEMBED_VERSION_NUMBER;
}

const char *qembed_status_str(qembed_status code) {
    switch (code) {
        case QEMBED_OK: return "ok";
        case QEMBED_ERR_INVALID_ARGUMENT: return "invalid argument";
        case QEMBED_ERR_IO: return "I/O error";
        case QEMBED_ERR_MODEL_FORMAT: return "malformed model";
        case QEMBED_ERR_UNSUPPORTED: return "unsupported";
        case QEMBED_ERR_OUT_OF_MEMORY: return "out of memory";
        case QEMBED_ERR_INVALID_UTF8: return "invalid UTF-8";
        case QEMBED_ERR_INPUT_TOO_LONG: return "input too long";
        case QEMBED_ERR_EMPTY_INPUT: return "empty input";
        case QEMBED_ERR_PLACEMENT: return "placement impossible";
        case QEMBED_ERR_NUMERIC: return "non-finite or zero result";
        case QEMBED_ERR_NOT_FOUND: return "not found";
        case QEMBED_ERR_DEVICE: return "device error";
        case QEMBED_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

qembed_status qe_error(qembed_error *err, qembed_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

qembed_status qe_error_prefix(qembed_error *err, qembed_status code, const char *fmt, ...) {
    if (err) {
        char prefix[QEMBED_ERROR_MESSAGE_MAX];
        char old[QEMBED_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->message, sizeof old);
        old[sizeof old - 1] = '\0';
        err->code = code;
        /* The prefix goes first; what does not fit of the old message is cut. */
        size_t np = strlen(prefix);
        memcpy(err->message, prefix, np + 1);
        if (np + 1 < sizeof err->message)
            memcpy(err->message + np, old, strnlen(old, sizeof err->message - np - 1));
        err->message[np + strnlen(old, sizeof err->message - np - 1)] = '\0';
    }
    return code;
}

void qembed_free(void *p) {
    free(p);
}
