// winograd_transform_1d -- one 1-D Winograd transform by a constant integer
// matrix, F(m, 3) with m in {2, 4} (t = m + 2):
//
//   KIND = 0: y = B^T x   (t inputs -> t outputs, input transform)
//   KIND = 1: y = A^T x   (t inputs -> m outputs, output transform)
//
// The matrices are those of winoforge.winograd.WinogradSpec(m) (the Python
// tests compare every output with it).  Combinational, shifts and adds only:
// every coefficient is 0, +-1, +-2, +-4, +-5 or +-8, and a coefficient c adds
// or subtracts x << k for each set bit k of |c| (5x = 4x + x), so no multiplier
// is inferred.
//
// Widths: the sum is computed modulo 2^OUT_W after extending each input to
// OUT_W bits (sign or zero extension by IN_SIGNED; truncation if
// IN_W > OUT_W).  Every operation is a ring operation, so an output is exact
// whenever its true value fits a signed OUT_W-bit word; the callers pass the
// exact widths computed by winoforge.hw.rtl.unit_parameters.
//
// Element i of a vector port sits at bits [i*W +: W] (element 0 at the LSBs).

module winograd_transform_1d #(
    parameter int M         = 2,   // output tile size m: 2 or 4
    parameter int KIND      = 0,   // 0: B^T (t x t), 1: A^T (m x t)
    parameter int IN_W      = 8,   // input element width
    parameter int IN_SIGNED = 1,   // 1: inputs are two's complement, 0: unsigned
    parameter int OUT_W     = 10   // output element width (two's complement)
) (
    input  logic [(M + 2) * IN_W - 1:0]                     x,
    output logic [((KIND == 0) ? M + 2 : M) * OUT_W - 1:0] y
);
    localparam int T    = M + 2;
    localparam int ROWS = (KIND == 0) ? T : M;

    // Row-major coefficient tables (row stride t), 8-bit two's complement
    // fields, entry (i, j) at bits [(i*t + j)*8 +: 8].
    //   B^T, m=2: [-1 0 1 0; 0 1 1 0; 0 -1 1 0; 0 -1 0 1]
    //   A^T, m=2: [1 1 1 0; 0 1 -1 1]
    //   B^T, m=4: [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
    //              0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
    //   A^T, m=4: [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
    localparam logic [287:0] BT2 = 288'h00000000000000000000000000000000000000000100ff000001ff0000010100000100ff;
    localparam logic [287:0] AT2 = 288'h0000000000000000000000000000000000000000000000000000000001ff010000010101;
    localparam logic [287:0] BT4 = 288'h0100fb0004000001feff0200000102fffe000001fffc0400000101fcfc00000100fb0004;
    localparam logic [287:0] AT4 = 288'h00000000000000000000000001f808ff010000040401010000fe02ff0100000101010101;
    localparam logic [287:0] TABLE = (KIND == 0) ? ((M == 2) ? BT2 : BT4) : ((M == 2) ? AT2 : AT4);

    // ---- inputs extended (or truncated) to OUT_W bits
    logic [T * OUT_W - 1:0] xe;  // element j at [j*OUT_W +: OUT_W]
    for (genvar j = 0; j < T; j++) begin : g_ext
        if (OUT_W <= IN_W) begin : g_trunc
            assign xe[j * OUT_W +: OUT_W] = x[j * IN_W +: OUT_W];
        end else begin : g_extend
            logic ext_bit;
            assign ext_bit = (IN_SIGNED != 0) ? x[j * IN_W + IN_W - 1] : 1'b0;
            assign xe[j * OUT_W +: OUT_W] = {{(OUT_W - IN_W){ext_bit}}, x[j * IN_W +: IN_W]};
        end
    end

    // ---- one shift-and-add row per output: (positive terms) - (negative terms)
    for (genvar i = 0; i < ROWS; i++) begin : g_row
        logic [OUT_W - 1:0] pos;
        logic [OUT_W - 1:0] neg;
        always_comb begin
            pos = '0;
            neg = '0;
            for (int j = 0; j < T; j++) begin
                for (int k = 0; k < 4; k++) begin
                    // |c| has bit k set: x << k joins the positive or the negative sum
                    if (coef_bit(TABLE, i * T + j, k)) begin
                        if (coef_negative(TABLE, i * T + j)) neg = neg + (xe[j * OUT_W +: OUT_W] << k);
                        else pos = pos + (xe[j * OUT_W +: OUT_W] << k);
                    end
                end
            end
        end
        assign y[i * OUT_W +: OUT_W] = pos - neg;
    end

    // bit k of |c| for table entry e (constant for constant arguments)
    function automatic logic coef_bit(input logic [287:0] table_bits, input int e, input int k);
        logic [7:0] c;
        logic [7:0] mag;
        c = table_bits[e * 8 +: 8];
        mag = c[7] ? (~c + 8'd1) : c;
        coef_bit = |(mag & (8'd1 << k));
    endfunction

    function automatic logic coef_negative(input logic [287:0] table_bits, input int e);
        coef_negative = table_bits[e * 8 + 7];
    endfunction
endmodule
