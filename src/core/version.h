/* core/version — the program's version, one place for every layer. */
#ifndef APIARY_CORE_VERSION_H
#define APIARY_CORE_VERSION_H

#ifndef APIARY_VERSION
#define APIARY_VERSION "0.1.0"
#endif

#endif
