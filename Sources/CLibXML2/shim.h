// libxml2's SAX2 push parser, for DatenwerkFormats' StreamingXMLDecoder (Debian: libxml2-dev).
//
// Debian builds libxml2 with ICU, so <libxml/encoding.h> includes the system's <unicode/ucnv.h>. Foundation
// brings its own, newer ICU headers (_FoundationICU) with a different `enum UErrorCode`; when both end up in
// one clang module context, a clean build can fail with "'U_MF_…' from module '_FoundationICU' is not present
// in definition of 'enum UErrorCode' in module 'CLibXML2'" (it did, depending on the order targets compiled).
// Nothing here uses libxml2's ICU converters: the headers are read without them. The only layout this
// changes is the end of xmlCharEncodingHandler (two ICU converter pointers), which this code never holds by
// value or allocates.
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>
