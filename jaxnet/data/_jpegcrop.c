/* Decode only the part of a JPEG that a crop needs, and resize it, with the system libjpeg-turbo.

   crop_resize(data, scale, left, top, right, bottom, out_w, out_h, flip) -> bytearray
       The box (left, top, right, bottom) of the full-size image, resized to out_w x out_h RGB
       (out_h rows of out_w * 3 bytes), mirrored left-right if `flip`, with Pillow's BILINEAR
       filter: a triangle filter whose
       support widens with the downscaling factor, so a downscale does not alias. The image is
       decoded at scale/8 of its size (libjpeg's DCT scaling), and of that only the rows and
       columns the filter reads: rows above are entropy-decoded only (jpeg_skip_scanlines), rows
       below are never read, columns outside are not inverse-transformed (jpeg_crop_scanline).
   decode(data, scale, x0, y0, x1, y1) -> (rgb bytes, left, width, height)
       The rows [y0, y1) and the columns [left, left + width) (libjpeg widens [x0, x1) to whole
       iMCU columns) of the image decoded at scale/8: the region decoder alone, for tests.

   Greyscale is expanded to RGB; CMYK/YCCK JPEGs raise ValueError (the caller uses Pillow).
   Corrupt or truncated data raises ValueError with libjpeg's message. The GIL is released
   while decoding and resizing.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef float v4f __attribute__((vector_size(16)));  /* an RGBX pixel in float, or a weight x 4 */

struct error_manager {
    struct jpeg_error_mgr pub;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
};

/* libjpeg calls this on a fatal error: keep the message, unwind to the setjmp in run(). */
static void on_error(j_common_ptr cinfo) {
    struct error_manager *err = (struct error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->escape, 1);
}

/* Warnings are ignored (as Pillow does), except running out of data: a truncated file is an
   error, not an image padded with grey. */
static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        struct error_manager *err = (struct error_manager *)cinfo->err;
        snprintf(err->message, sizeof err->message, "truncated JPEG data");
        longjmp(err->escape, 1);
    }
}

static void fail(j_decompress_ptr cinfo, const char *message) {
    struct error_manager *err = (struct error_manager *)cinfo->err;
    snprintf(err->message, sizeof err->message, "%s", message);
    longjmp(err->escape, 1);
}

/* One call's work. Everything malloc'ed hangs here, so that an error anywhere can free it. */
struct job {
    const unsigned char *data;
    size_t size;
    int scale, channels;
    int x0, y0, x1, y1;        /* decode: region in scaled pixels */
    double box[4];             /* crop_resize: box in full-size pixels */
    int out_w, out_h, flip;
    unsigned char *out;        /* crop_resize: out_h * out_w * 3 bytes, owned by the caller */
    unsigned char *pixels;     /* decoded region: height rows of width * channels bytes */
    JDIMENSION left, width, height;
    int *xbounds, *ybounds;    /* resampling: first input, per output */
    float *xweights, *yweights, *row;
    char message[JMSG_LENGTH_MAX];
};

static void release(struct job *j) {
    free(j->xbounds), free(j->ybounds), free(j->xweights), free(j->yweights), free(j->row);
    j->xbounds = j->ybounds = NULL, j->xweights = j->yweights = j->row = NULL;
}

/* Header, colour space and scale: ready to read scanlines. */
static void start(j_decompress_ptr cinfo, struct job *j) {
    jpeg_mem_src(cinfo, j->data, (unsigned long)j->size);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
        fail(cinfo, "CMYK/YCCK JPEG: not decoded here");
    cinfo->out_color_space = j->channels == 4 ? JCS_EXT_RGBX : JCS_RGB;
    cinfo->scale_num = (unsigned int)j->scale;
    cinfo->scale_denom = 8;
    jpeg_start_decompress(cinfo);
}

/* Restrict decoding to at least the columns [x0, x1): libjpeg widens them to whole iMCU columns,
   [*left, *left + *width). */
static void crop_columns(j_decompress_ptr cinfo, JDIMENSION x0, JDIMENSION x1, JDIMENSION *left,
                         JDIMENSION *width) {
    if (x1 > cinfo->output_width) x1 = cinfo->output_width;
    if (x0 >= x1)
        fail(cinfo, "empty region");
    *left = x0, *width = x1 - x0;
    if (*width < cinfo->output_width)
        jpeg_crop_scanline(cinfo, left, width);
}

/* Skip the first `rows` rows: entropy-decoded only, no inverse DCT or colour conversion. */
static void skip_rows(j_decompress_ptr cinfo, JDIMENSION rows) {
    if (rows > 0 && jpeg_skip_scanlines(cinfo, rows) != rows)
        fail(cinfo, "cannot skip rows");
}

/* Decode rows [y0, y1) and at least columns [x0, x1) of the scaled image into j->pixels. */
static void read_region(j_decompress_ptr cinfo, struct job *j, JDIMENSION x0, JDIMENSION y0,
                        JDIMENSION x1, JDIMENSION y1) {
    if (y1 > cinfo->output_height) y1 = cinfo->output_height;
    if (y0 >= y1)
        fail(cinfo, "empty region");
    crop_columns(cinfo, x0, x1, &j->left, &j->width);
    size_t stride = (size_t)j->width * j->channels;
    j->pixels = malloc(stride * (y1 - y0));
    if (!j->pixels)
        fail(cinfo, "out of memory");
    skip_rows(cinfo, y0);
    while (cinfo->output_scanline < y1) {
        JSAMPROW row = j->pixels + (size_t)(cinfo->output_scanline - y0) * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    j->height = y1 - y0;
}

/* Pillow's BILINEAR resampling weights (its precompute_coeffs, in float): a triangle filter of
   support max(1, scale). Output i reads the inputs bounds[i] + k, k < taps (the return value),
   with the weights weights[i * taps + k]: every output gets the same number of taps (zeros pad
   the shorter ones) so that the loops over them have a fixed length. */
static int filter_taps(double in0, double in1, int in_size, int out_size, int **bounds, float **weights) {
    double scale = (in1 - in0) / out_size, support = scale < 1.0 ? 1.0 : scale;
    int taps = 1;
    *bounds = malloc(sizeof(int) * out_size);
    if (!*bounds)
        return -1;
    for (int pass = 0; pass < 2; pass++) {  /* the largest tap count, then the weights */
        for (int i = 0; i < out_size; i++) {
            double center = in0 + (i + 0.5) * scale, total = 0.0;
            int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
            if (lo < 0) lo = 0;
            if (hi > in_size) hi = in_size;
            if (pass == 0) {
                if (hi - lo > taps) taps = hi - lo;
                continue;
            }
            int first = lo + taps > in_size ? in_size - taps : lo;
            float *w = *weights + (size_t)i * taps + (lo - first);
            for (int x = lo; x < hi; x++) {
                double d = fabs((x - center + 0.5) / support);
                w[x - lo] = (float)(d < 1.0 ? 1.0 - d : 0.0);
                total += w[x - lo];
            }
            for (int x = lo; x < hi; x++)
                w[x - lo] = total != 0.0 ? (float)(w[x - lo] / total) : 0.0f;
            (*bounds)[i] = first;
        }
        if (pass == 0 && !(*weights = calloc((size_t)taps * out_size, sizeof(float))))
            return -1;
    }
    return taps;
}

/* The resampling loops: each also compiled for AVX2 where the compiler can, chosen at run time. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define KERNEL
#endif

/* bytes -> floats */
KERNEL static void widen(const unsigned char *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = in[i];
}

/* Horizontal pass: RGB of output pixel o = sum over t of weights[o * taps + t] *
   line[bounds[o] - first + t], into out[3 * o ...] (out has one float to spare at the end: each
   pixel is stored as 4 floats, the 4th overwritten by the next pixel). */
KERNEL static void filter_row(const v4f *line, int first, const int *bounds, const v4f *weights,
                              int taps, int out_w, float *out) {
    for (int o = 0; o < out_w; o++) {
        const v4f *k = weights + (size_t)o * taps;
        const v4f *p = line + (bounds[o] - first);
        v4f acc = k[0] * p[0];
        for (int t = 1; t < taps; t++)
            acc += k[t] * p[t];
        memcpy(out + 3 * o, &acc, sizeof acc);
    }
}

/* out (+)= k * in, n floats */
KERNEL static void axpy(float k, const float *in, float *out, size_t n, int first) {
    if (first)
        for (size_t i = 0; i < n; i++)
            out[i] = k * in[i];
    else
        for (size_t i = 0; i < n; i++)
            out[i] += k * in[i];
}

/* Round and clamp n floats to bytes. */
KERNEL static void to_bytes(const float *in, unsigned char *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = in[i] + 0.5f;
        x = x < 0.0f ? 0.0f : x;
        out[i] = (unsigned char)(int)(x > 255.0f ? 255.0f : x);
    }
}

/* Decode what the box's filter reads, at scale/8, and resample it into j->out, streaming: each
   decoded row is filtered horizontally into a ring of ytaps rows, and each output row is
   combined from the ring as soon as its last input row has been decoded. */
static void crop_resize_job(j_decompress_ptr cinfo, struct job *j) {
    start(cinfo, j);
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height;
    double sx = (double)w / cinfo->image_width, sy = (double)h / cinfo->image_height;
    int xtaps = filter_taps(j->box[0] * sx, j->box[2] * sx, w, j->out_w, &j->xbounds, &j->xweights);
    int ytaps = filter_taps(j->box[1] * sy, j->box[3] * sy, h, j->out_h, &j->ybounds, &j->yweights);
    if (xtaps < 0 || ytaps < 0)
        fail(cinfo, "out of memory");
    const int *xb = j->xbounds, *yb = j->ybounds;
    const float *xw = j->xweights, *yw = j->yweights;
    /* the columns and rows the filter reads (bounds are nondecreasing) */
    int cx0 = xb[0], cx1 = xb[j->out_w - 1] + xtaps, ry0 = yb[0], ry1 = yb[j->out_h - 1] + ytaps;
    if (cx0 >= cx1 || ry0 >= ry1)
        fail(cinfo, "empty box");
    if (j->flip)  /* mirrored output: the horizontal filter's outputs in reverse order */
        for (int a = 0, b = j->out_w - 1; a < b; a++, b--) {
            int bound = j->xbounds[a];
            j->xbounds[a] = j->xbounds[b], j->xbounds[b] = bound;
            for (int t = 0; t < xtaps; t++) {
                float weight = j->xweights[(size_t)a * xtaps + t];
                j->xweights[(size_t)a * xtaps + t] = j->xweights[(size_t)b * xtaps + t];
                j->xweights[(size_t)b * xtaps + t] = weight;
            }
        }
    /* One column more on each side: libjpeg's fancy chroma upsampling treats the region's first
       and last columns as image edges, so those can differ from a full decode. */
    JDIMENSION left, width;
    crop_columns(cinfo, cx0 > 0 ? cx0 - 1 : 0, cx1 + 1, &left, &width);
    size_t columns = (size_t)(cx1 - cx0), out_row = (size_t)j->out_w * 3, ring_row = out_row + 1;
    j->row = malloc(sizeof(v4f) * (columns + (size_t)xtaps * j->out_w + 1) +
                    sizeof(float) * ((size_t)ytaps * ring_row + out_row) + (size_t)width * 4);
    if (!j->row)
        fail(cinfo, "out of memory");
    v4f *line = (v4f *)(((uintptr_t)j->row + 15) & ~(uintptr_t)15);  /* an input row, in float */
    v4f *weights = line + columns;          /* xw, each weight in all 4 lanes */
    float *rows = (float *)(weights + (size_t)xtaps * j->out_w);  /* ring of filtered rows */
    float *result = rows + (size_t)ytaps * ring_row;               /* an output row, in float */
    unsigned char *raw = (unsigned char *)(result + out_row);      /* a row from libjpeg */
    for (size_t i = 0; i < (size_t)xtaps * j->out_w; i++)
        weights[i] = (v4f){xw[i], xw[i], xw[i], xw[i]};
    skip_rows(cinfo, (JDIMENSION)ry0);
    int next = 0;  /* next output row */
    for (int y = ry0; y < ry1; y++) {
        JSAMPROW scan = raw;
        jpeg_read_scanlines(cinfo, &scan, 1);
        widen(raw + (size_t)(cx0 - (int)left) * 4, (float *)line, columns * 4);
        filter_row(line, cx0, xb, weights, xtaps, j->out_w, rows + (size_t)((y - ry0) % ytaps) * ring_row);
        for (; next < j->out_h && yb[next] + ytaps - 1 <= y; next++) {
            for (int t = 0; t < ytaps; t++)
                axpy(yw[(size_t)next * ytaps + t], rows + (size_t)((yb[next] + t - ry0) % ytaps) * ring_row,
                     result, out_row, t == 0);
            to_bytes(result, j->out + (size_t)next * out_row, out_row);
        }
    }
    jpeg_abort_decompress(cinfo);  /* rows below the box: never decoded */
}

static void decode_job(j_decompress_ptr cinfo, struct job *j) {
    start(cinfo, j);
    read_region(cinfo, j, (JDIMENSION)j->x0, (JDIMENSION)j->y0, (JDIMENSION)j->x1, (JDIMENSION)j->y1);
    jpeg_abort_decompress(cinfo);
}

/* Run `work` with libjpeg's errors caught; 0 on success, -1 with j->message set. No Python
   calls: runs without the GIL. */
static int run(struct job *j, void (*work)(j_decompress_ptr, struct job *)) {
    struct jpeg_decompress_struct cinfo;
    struct error_manager err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.message[0] = '\0';
    jpeg_create_decompress(&cinfo);
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        release(j);
        free(j->pixels), j->pixels = NULL;
        snprintf(j->message, sizeof j->message, "%s", err.message);
        return -1;
    }
    work(&cinfo, j);
    jpeg_destroy_decompress(&cinfo);
    release(j);
    return 0;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer view;
    struct job j;
    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTuple(args, "y*iiiii", &view, &j.scale, &j.x0, &j.y0, &j.x1, &j.y1))
        return NULL;
    if (j.scale < 1 || j.scale > 16 || j.x0 < 0 || j.y0 < 0 || j.x1 <= j.x0 || j.y1 <= j.y0) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "bad request: scale %d/8, region [%d, %d) x [%d, %d)",
                            j.scale, j.x0, j.x1, j.y0, j.y1);
    }
    j.data = view.buf, j.size = (size_t)view.len, j.channels = 3;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run(&j, decode_job);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (status)
        return PyErr_Format(PyExc_ValueError, "%s", j.message);
    PyObject *pixels = PyBytes_FromStringAndSize((const char *)j.pixels, (Py_ssize_t)j.width * j.height * 3);
    free(j.pixels);
    if (!pixels)
        return NULL;
    return Py_BuildValue("(Niii)", pixels, (int)j.left, (int)j.width, (int)j.height);
}

static PyObject *crop_resize(PyObject *self, PyObject *args) {
    Py_buffer view;
    struct job j;
    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTuple(args, "y*iddddii|p", &view, &j.scale, &j.box[0], &j.box[1], &j.box[2], &j.box[3],
                          &j.out_w, &j.out_h, &j.flip))
        return NULL;
    if (j.scale < 1 || j.scale > 16 || j.out_w < 1 || j.out_h < 1 || j.out_w > 65535 || j.out_h > 65535 ||
        !(j.box[0] >= 0 && j.box[1] >= 0 && j.box[2] > j.box[0] && j.box[3] > j.box[1])) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "bad request: scale %d/8, box (%g, %g, %g, %g), size %dx%d",
                            j.scale, j.box[0], j.box[1], j.box[2], j.box[3], j.out_w, j.out_h);
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)j.out_w * j.out_h * 3);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    j.data = view.buf, j.size = (size_t)view.len, j.channels = 4;
    j.out = (unsigned char *)PyByteArray_AS_STRING(out);
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run(&j, crop_resize_job);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    free(j.pixels);
    if (status) {
        Py_DECREF(out);
        return PyErr_Format(PyExc_ValueError, "%s", j.message);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"crop_resize", crop_resize, METH_VARARGS,
     "crop_resize(data, scale, left, top, right, bottom, out_w, out_h, flip=False) -> bytearray\n"
     "of out_h rows of out_w RGB pixels: the box (full-size coordinates) of the JPEG decoded at\n"
     "scale/8, resized with Pillow's BILINEAR filter, mirrored left-right if flip. Only the\n"
     "pixels the filter reads are decoded."},
    {"decode", decode, METH_VARARGS,
     "decode(data, scale, x0, y0, x1, y1) -> (rgb bytes, left, width, height): the rows\n"
     "[y0, y1) and columns [left, left + width) (a superset of [x0, x1), aligned by libjpeg)\n"
     "of the JPEG decoded at scale/8 of its size."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpegcrop",
    "Decoding only the part of a JPEG that a crop needs, at a reduced DCT scale, and resizing it\n"
    "(system libjpeg-turbo).", -1, methods,
};

PyMODINIT_FUNC PyInit__jpegcrop(void) {
    return PyModule_Create(&module);
}
