/* flt_status.c - see flt_status.h: the string table of the status X-macro list. */
#include "flt_status.h"

#define FLT_STATUS_TEXT_ITEM(name, value, text) [value] = text,
static const char *const flt_status_text[FLT_STATUS_COUNT] = {
    FLT_STATUS_LIST(FLT_STATUS_TEXT_ITEM)};
#undef FLT_STATUS_TEXT_ITEM

const char *flt_status_str(flt_status_t status)
{
    /* Unsigned compare: the enum may be a narrow unsigned type on ARM (short enums). */
    unsigned int index = (unsigned int)status;
    if (index >= (unsigned int)FLT_STATUS_COUNT || flt_status_text[index] == 0) {
        return "unknown status";
    }
    return flt_status_text[index];
}
