// winoforge_mvau_lut: FINN's MVAU without activation (noActivation = 1) -- a dense
// matrix-vector product in LUTs, no DSP primitives -- as plain synthesizable
// SystemVerilog.  y[j] = sum_i x[i] * W[i][j], i < MW, j < MH.
//
// Folding as FINN's MVAU: SIMD input elements per input beat, PE outputs per output
// beat; SF = MW/SIMD input beats per vector, NF = MH/PE output beats: NF*SF cycles per
// vector (FINN's MVAU.get_exp_cycles).  The vector is replayed for the NF folds from a
// two-bank buffer of SF words; the stream fills the other bank meanwhile, so the next
// vector's beats may arrive at any time during the current one's folds.  (Reading the
// vector from the stream in fold 0, as FINN's MVAU does, stalls fold 0 whenever the
// stream is slower than a beat a cycle -- e.g. behind a width converter from a
// one-element stream -- and a layer at the network's bottleneck never catches up:
// ResNet-8's 1x1 projections ran the whole accelerator 5.5 % below its rate.)
// Weights: a ROM of NF*SF words, $readmemh(WEIGHTS_FILE); word nf*SF + sf holds
// W[sf*SIMD + s][nf*PE + p] at bits [(p*SIMD + s)*W_W +: W_W].
// Arithmetic modulo 2^ACC_W (exact: the result fits FINN's accumulator datatype).
// Pipeline: issue (weight ROM read, input select) -> dot products + accumulate ->
// output register; everything stalls while the output register is held.
(* use_dsp = "no" *)
module winoforge_mvau_lut #(
    parameter int PE = 1,
    parameter int SIMD = 1,
    parameter int MW = 4,
    parameter int MH = 4,
    parameter int IN_W = 4,
    parameter int IN_SIGNED = 0,
    parameter int W_W = 4,
    parameter int W_SIGNED = 1,
    parameter int ACC_W = 16,
    parameter WEIGHTS_FILE = ""
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic [SIMD*IN_W-1:0]  in_data,
    input  logic                  in_valid,
    output logic                  in_ready,
    output logic [PE*ACC_W-1:0]   out_data,
    output logic                  out_valid,
    input  logic                  out_ready
);
    localparam int SF = MW / SIMD;
    localparam int NF = MH / PE;
    localparam int DEPTH = SF * NF;
    localparam int SW = SF > 1 ? $clog2(SF) : 1;
    localparam int NW = NF > 1 ? $clog2(NF) : 1;
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
    localparam int XE = IN_W + (IN_SIGNED != 0 ? 0 : 1);   // signed operand widths
    localparam int WE = W_W + (W_SIGNED != 0 ? 0 : 1);
    localparam int PW = XE + WE;

    logic [PE*SIMD*W_W-1:0] rom [DEPTH];
    // the default (no file) lets a frontend elaborate the core before the wrapper sets the file
    initial if (WEIGHTS_FILE != "") $readmemh(WEIGHTS_FILE, rom);

    // ---- input buffer: two banks of SF words; the stream fills one while the
    // vector in the other is replayed for folds 0..NF-1 (the next vector arrives
    // during the current one's folds, so a narrower or slower stream in front of
    // the layer does not stall fold 0); a word read in the cycle it arrives is
    // bypassed (NF = 1: one beat a cycle)
    logic [SW-1:0] sf;
    logic [NW-1:0] nf;
    logic [AW-1:0] addr;
    logic [SIMD*IN_W-1:0] bank [2][SF];
    logic       wr_b, rd_b;
    logic [SW-1:0] wr_sf;
    logic [1:0] full;
    wire en = !out_valid || out_ready;
    assign in_ready = !full[wr_b];
    wire wr = in_valid && in_ready;
    wire bypass = wr && (wr_b == rd_b) && (wr_sf == sf);
    wire have = full[rd_b] || (wr_b == rd_b && wr_sf > sf) || bypass;
    wire issue = have;
    wire [SIMD*IN_W-1:0] x_issue = bypass ? in_data : bank[rd_b][sf];
    wire done = en && issue && (sf == SW'(SF - 1)) && (nf == NW'(NF - 1));  // bank rd_b released
    wire filled = wr && (wr_sf == SW'(SF - 1));                          // bank wr_b complete
    always_ff @(posedge ap_clk) begin
        if (wr) bank[wr_b][wr_sf] <= in_data;
        if (!ap_rst_n) begin
            wr_b <= 1'b0; rd_b <= 1'b0; wr_sf <= '0; full <= '0;
        end else begin
            for (int b = 0; b < 2; b++)
                full[b] <= (full[b] || (filled && wr_b == 1'(b))) && !(done && rd_b == 1'(b));
            if (wr) begin
                wr_sf <= filled ? '0 : wr_sf + 1'b1;
                if (filled) wr_b <= !wr_b;
            end
            if (done) rd_b <= !rd_b;
        end
    end

    logic s1_valid, s1_first, s1_last;
    logic [SIMD*IN_W-1:0] s1_x;
    logic [PE*SIMD*W_W-1:0] s1_w;

    always_ff @(posedge ap_clk) begin
        if (en && issue) begin
            s1_x <= x_issue;
            s1_w <= rom[addr];
            s1_first <= (sf == '0);
            s1_last <= (sf == SW'(SF - 1));
        end
    end

    // ---- dot products
    logic signed [ACC_W-1:0] acc [PE];
    logic signed [ACC_W-1:0] nxt [PE];

    function automatic logic signed [XE-1:0] xval(input logic [IN_W-1:0] v);
        if (IN_SIGNED != 0) xval = XE'($signed(v));
        else xval = XE'(v);
    endfunction
    function automatic logic signed [WE-1:0] wval(input logic [W_W-1:0] v);
        if (W_SIGNED != 0) wval = WE'($signed(v));
        else wval = WE'(v);
    endfunction

    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic signed [ACC_W-1:0] sum;
            sum = s1_first ? '0 : acc[p];
            for (int s = 0; s < SIMD; s++) begin
                logic signed [PW-1:0] prod;
                logic signed [XE-1:0] xs;
                logic signed [WE-1:0] ws;
                xs = xval(s1_x[s*IN_W +: IN_W]);
                ws = wval(s1_w[(p*SIMD + s)*W_W +: W_W]);
                // shift-and-add (two's complement: the weight's top bit weighs -2^(WE-1)), so no
                // tool infers a DSP multiplier from a '*' (Yosys 0.23 ignores use_dsp = "no")
                prod = '0;
                for (int b = 0; b < WE; b++)
                    if (ws[b]) prod = (b == WE - 1) ? prod - (PW'(xs) <<< b) : prod + (PW'(xs) <<< b);
                sum = sum + ACC_W'(prod);
            end
            nxt[p] = sum;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf <= '0;
            nf <= '0;
            addr <= '0;
            s1_valid <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (en) begin
                s1_valid <= issue;
                if (issue) begin
                    addr <= (addr == AW'(DEPTH - 1)) ? '0 : addr + 1'b1;
                    if (sf == SW'(SF - 1)) begin
                        sf <= '0;
                        nf <= (nf == NW'(NF - 1)) ? '0 : nf + 1'b1;
                    end else begin
                        sf <= sf + 1'b1;
                    end
                end
                if (s1_valid) begin
                    for (int p = 0; p < PE; p++) acc[p] <= nxt[p];
                    if (s1_last) begin
                        out_valid <= 1'b1;
                        for (int p = 0; p < PE; p++) out_data[p*ACC_W +: ACC_W] <= nxt[p];
                    end
                end
            end
        end
    end
endmodule
